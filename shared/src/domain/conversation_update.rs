//! What an update does to a conversation, computed here rather than by DynamoDB: a write of a
//! conversation's large fields reads it, applies the update to what it read, and writes the
//! body whole under the condition that nothing changed since (layout 4, `store::split`). The
//! immutable fields' checks are the same as the single-item write's conditions; the limits on
//! the result (64 labels, 16 KiB of metadata) are the store's to check on what this returns.

use crate::domain::conversation::Conversation;
use crate::domain::field_mask::{LabelsChange, MetadataChange, NestedWrite, Update};
use crate::domain::seed_fields::{Leaf, LeafValue};
use crate::error::ApiError;

impl Update {
    /// Whether the update writes any of the conversation's large fields (`agents`,
    /// `conversationProfile`, `labels`, `metadata`, `qualityMetadata`, `callMetadata`,
    /// `dataSource`, `sources`, `phoneNumber`): a mask naming none of them leaves the body alone.
    pub fn writes_large_fields(&self) -> bool {
        self.agents.is_some()
            || self.profile_must_be.is_some()
            || self.labels != LabelsChange::Keep
            || self.metadata != MetadataChange::Keep
            || !self.nested.is_empty()
            || self.sources.is_some()
            || !self.phone_must_be.is_empty()
    }

    /// The conversation after this update (its version, times and counters untouched), or the
    /// 400 of an immutable field the mask gives another value.
    pub fn applied_to(&self, old: &Conversation) -> Result<Conversation, ApiError> {
        if let Some(required) = &self.profile_must_be
            && old.conversation_profile != *required
        {
            return Err(ApiError::InvalidArgument(
                "conversationProfile is immutable after create".into(),
            ));
        }
        if self
            .phone_must_be
            .iter()
            .any(|(leaf, v)| leaf.of(old.phone_number.as_ref()) != *v)
        {
            return Err(ApiError::InvalidArgument(
                "phoneNumber is immutable after create".into(),
            ));
        }
        let mut c = old.clone();
        for (field, value) in [
            (&mut c.display_name, &self.display_name),
            (&mut c.category, &self.category),
            (&mut c.language_code, &self.language_code),
        ] {
            if let Some(value) = value {
                *field = value.clone();
            }
        }
        if let Some(agents) = &self.agents {
            c.agents = agents.clone();
        }
        match &self.labels {
            LabelsChange::Keep => {}
            LabelsChange::Replace(labels) => c.labels = labels.clone(),
            LabelsChange::Keys(keys) => {
                for (k, v) in keys {
                    match v {
                        Some(v) => c.labels.insert(k.clone(), v.clone()),
                        None => c.labels.remove(k),
                    };
                }
            }
        }
        match &self.metadata {
            MetadataChange::Keep => {}
            MetadataChange::Replace(m) => c.metadata = m.clone(),
            MetadataChange::Keys(keys) => {
                let mut metadata = c.metadata.take().unwrap_or_default();
                for (k, v) in keys {
                    match v {
                        Some(v) => metadata.insert(k.clone(), v.clone()),
                        None => metadata.remove(k),
                    };
                }
                c.metadata = Some(metadata).filter(|m| !m.is_empty());
            }
        }
        if let Some(stage) = self.stage {
            c.stage = stage;
        }
        if let Some(start) = self.start_time {
            c.start_time = start;
        }
        if let Some(expire) = self.expire_time {
            c.expire_time = expire;
        }
        for write in &self.nested {
            match write {
                NestedWrite::Quality(q) => c.quality_metadata = q.clone(),
                NestedWrite::Call(call) => c.call_metadata = call.clone(),
                NestedWrite::DataSource(d) => c.data_source = d.clone(),
                NestedWrite::Gcs(g) => c.data_source.gcs = g.clone(),
                NestedWrite::Dialogflow(d) => c.data_source.dialogflow = d.clone(),
                NestedWrite::Leaf(leaf, value) => write_leaf(&mut c, *leaf, value.clone()),
            }
        }
        if let Some(sources) = &self.sources {
            c.sources = sources.clone();
        }
        Ok(c)
    }
}

/// Sets (`Some`) or removes (`None`) one leaf of the seed objects.
fn write_leaf(c: &mut Conversation, leaf: Leaf, value: Option<LeafValue>) {
    let int = |v: &Option<LeafValue>| match v {
        Some(LeafValue::Int(n)) => Some(*n),
        _ => None,
    };
    let text = |v: Option<LeafValue>| match v {
        Some(LeafValue::Text(t)) => Some(t),
        _ => None,
    };
    match leaf {
        Leaf::Rating => c.quality_metadata.customer_satisfaction_rating = int(&value),
        Leaf::WaitDuration => c.quality_metadata.wait_duration = text(value),
        Leaf::MenuPath => c.quality_metadata.menu_path = text(value),
        Leaf::AgentInfo => {
            c.quality_metadata.agent_info = match value {
                Some(LeafValue::Agents(agents)) => agents,
                _ => Vec::new(),
            }
        }
        Leaf::CustomerChannel => c.call_metadata.customer_channel = int(&value),
        Leaf::AgentChannel => c.call_metadata.agent_channel = int(&value),
        Leaf::GcsAudioUri => c.data_source.gcs.audio_uri = text(value),
        Leaf::GcsTranscriptUri => c.data_source.gcs.transcript_uri = text(value),
        Leaf::DialogflowConversation => {
            c.data_source.dialogflow.dialogflow_conversation = text(value)
        }
        Leaf::DialogflowAudioUri => c.data_source.dialogflow.audio_uri = text(value),
    }
}
