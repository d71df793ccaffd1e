//! When a call is sent again, and how long the client waits before it.
//!
//! A call is retried only when sending it twice cannot do anything twice ([`Safety`], which also
//! says how an etag write whose retry meets its own first attempt is recognised); only
//! on the answers that say "try later" (429, 502, 503, 504) or on a connection that failed; at
//! most [`Retry::attempts`] times in all; after `Retry-After` when the service sent one, else after
//! an exponential backoff with full jitter (a random wait between 0 and `base × 2^n`, at most
//! `max_delay`), so many clients that failed together do not come back together.

use std::time::Duration;

/// Whether a call may be sent again after a failure whose outcome is unknown, and what the client
/// promises when it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safety {
    /// Sending it again cannot write twice, and a repeat answers as the first attempt would:
    /// reads; creates, appends and batches carrying their idempotency key (the service answers a
    /// repeat with the first answer; a batch's `conversationMetadata` is not applied again);
    /// `complete` without an etag (completing a completed conversation answers it unchanged);
    /// delete with `allowMissing` (a repeat answers 200); clear messages through a given order
    /// without an etag (clearing again through the same order changes nothing but `updateTime`
    /// and the etag); purge with `allowMissing` (a repeat answers 200 `{}`).
    ///
    /// What a repeat of these cannot tell: an append or batch whose message was deleted or
    /// cleared between its attempts answers 409 `ALREADY_EXISTS` (it was appended once). A
    /// clear or purge without an etag whose repeat arrives after the conversation was purged
    /// and created again under its id acts on the new conversation (with an etag it is refused).
    Retryable,
    /// Writes that a repeat cannot apply twice, because the first attempt, once applied, makes
    /// the repeat fail: the etag writes — update, delete, undelete, complete, update message and
    /// clear messages with an etag — whose repeat fails its precondition (409 `ABORTED`, 412;
    /// for delete 404, the conversation being deleted; for undelete 409 `ALREADY_EXISTS`); and,
    /// with or without an etag, delete message (404: its order is never given again, so a
    /// repeat can only meet the message it deleted) and purge without `allowMissing` (404, or
    /// 409/412 with an etag: the conversation is gone). When a retry is refused so after an
    /// attempt whose outcome is unknown (a 429 or 5xx answer, a timeout, a connection that broke
    /// after the request went out), the client reads the resource back once and answers the
    /// call as done when the state shows the write: the etag is none of those sent, the
    /// conversation is not deleted (delete: deleted), and every field the call set holds the
    /// value sent (update: each path of the mask, or each field of the body without one; update
    /// message the same; complete: `COMPLETED`; undelete: not deleted); clear: no message up to
    /// its order (without one: `messageCount` 0); delete message: the conversation live and the
    /// message 404, answered with its name and order only (what it held cannot be read any
    /// more); purge: the conversation 404. Otherwise — or when the read fails — it answers the
    /// refusal. A refusal of the first attempt is always answered as it is.
    ///
    /// What a read cannot tell apart: another writer who, after the etag was read, left every
    /// field this call sets at the value sent (the same change, or another change while those
    /// fields already held these values) makes a refused write look done; the state then holds
    /// what the call asked for, but not on top of the version its etag named. So do another
    /// writer's delete or clear of the same message (delete message, clear), and another
    /// writer's purge or the conversation's expiry (purge): the message or the conversation is
    /// gone, which is what the call asked for. And a write that applied and was changed again
    /// by another writer before the read answers the refusal: a clear of every message followed
    /// by an append, a purge followed by a create under the same id. Values that the service
    /// rewrites (a mask of `*`, `ttl`, a timestamp not written in the form the service renders)
    /// cannot be compared: the refusal. A delete message or purge without an etag whose repeat
    /// arrives after the conversation was purged and created again under its id acts on the new
    /// conversation (its message of that order, or itself): with an etag it is refused.
    Recognised,
    /// Writes that a repeat could apply again over a later write: update, delete and undelete
    /// without an etag (`If-Match: *` counts as no etag), and a clear of every message without
    /// an etag (a repeat would clear what was appended between the attempts). Sent once, and an
    /// unknown outcome is reported as the error it was.
    Once,
}

/// The retry policy of a [`crate::Client`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all, the first one included (1 = never retry).
    pub attempts: u32,
    /// The first backoff's upper bound.
    pub base_delay: Duration,
    /// The cap of any wait, `Retry-After` included.
    pub max_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl Retry {
    /// Never retry.
    pub fn none() -> Self {
        Self {
            attempts: 1,
            ..Self::default()
        }
    }

    /// Whether an answer with `status` asks to try again later.
    pub(crate) fn retryable_status(status: u16) -> bool {
        matches!(status, 429 | 502 | 503 | 504)
    }

    /// The wait before attempt `attempt + 1` (attempt counts from 0), given the answer's
    /// `Retry-After`.
    pub(crate) fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_delay);
        }
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        ceiling.mul_f64(fastrand::f64())
    }
}

/// `Retry-After` as seconds (RFC 9110 also allows an HTTP date; the service sends seconds).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let r = Retry::default();
        assert_eq!(
            r.delay(0, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(r.delay(0, Some(Duration::from_secs(999))), r.max_delay);
    }

    #[test]
    fn backoff_is_jittered_below_an_exponential_ceiling() {
        let r = Retry::default();
        for attempt in 0..6 {
            let ceiling = r.base_delay * (1 << attempt);
            for _ in 0..50 {
                assert!(r.delay(attempt, None) <= ceiling.min(r.max_delay));
            }
        }
        assert!(r.delay(40, None) <= r.max_delay);
    }

    #[test]
    fn only_try_later_answers_are_retried() {
        for status in [429, 502, 503, 504] {
            assert!(Retry::retryable_status(status));
        }
        for status in [200, 400, 404, 409, 412, 422, 500] {
            assert!(!Retry::retryable_status(status));
        }
        assert_eq!(parse_retry_after(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
