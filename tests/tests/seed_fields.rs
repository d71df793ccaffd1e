//! The seed APIs' remaining fields (`qualityMetadata`, `callMetadata`, `dataSource`, `sources`,
//! `phoneNumber`) and fully qualified update-mask paths (AIP-161): stored as native maps and
//! lists, rendered everywhere, and written leaf by leaf whatever the stored conversation already
//! holds — absent parent, present parent, the other member of `dataSource`, the last leaf removed:
//! applied to the conversation read and written with its body in one transaction (layout 4), and
//! every answer equal to what a read then shows.

use api_tests::{Method, Req, Res, TestApp, id, owner};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};

fn patch(o: &str, i: &str, mask: &str, body: Value) -> Req {
    Req::new(Method::Update)
        .owner(o)
        .id(i)
        .query("updateMask", mask)
        .json(body)
}

/// Patches, asserts a 200 made with one read and one transaction (the large fields' write),
/// and returns the body.
async fn patched(t: &TestApp, o: &str, i: &str, mask: &str, body: Value) -> Value {
    t.counter.take();
    let res = t.call(patch(o, i, mask, body)).await;
    assert_eq!(res.status, 200, "{mask}: {}", res.body);
    assert_eq!(
        t.counter.take(),
        ["Query", "TransactWriteItems"],
        "{mask}: one read of head and body, one transaction"
    );
    let read = t.call(Req::new(Method::Get).owner(o).id(i)).await;
    assert_eq!(
        read.body, res.body,
        "what the PATCH answered is what is stored"
    );
    res.body
}

fn fields(res: &Res) -> Vec<String> {
    let mut f: Vec<String> = res.body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("errors in {}", res.body))
        .iter()
        .map(|e| e["field"].as_str().expect("a field").to_owned())
        .collect();
    f.sort();
    f
}

const FULL: &str = r#"{
    "agents": ["bot"],
    "qualityMetadata": {"customerSatisfactionRating": 4, "waitDuration": "12.5s", "menuPath": "billing>refunds",
        "agentInfo": [{"agentId": "a-1", "displayName": "Ann", "team": "t1", "dispositionCode": "resolved"}]},
    "callMetadata": {"customerChannel": 1, "agentChannel": 2},
    "dataSource": {"gcsSource": {"audioUri": "gs://calls/1.wav", "transcriptUri": "gs://calls/1.json"}},
    "sources": [{"model": "thelook", "explore": "orders"}, {"model": "thelook", "explore": "users"}],
    "phoneNumber": {"countryCode": 1, "phoneNumber": "+14155550100"},
    "metadata": {"channel": "web", "n": 1.5, "": "an empty key", "x y": {"deep": [null]}}
}"#;

#[tokio::test]
async fn every_seed_field_is_created_rendered_and_stored_as_native_maps_and_lists() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let body: Value = serde_json::from_str(FULL).expect("json");
    let created = t.create(&o, &i, body.clone()).await;
    for field in [
        "qualityMetadata",
        "callMetadata",
        "dataSource",
        "sources",
        "phoneNumber",
        "metadata",
    ] {
        assert_eq!(created[field], body[field], "{field}");
    }
    let stored = t.stored(&o, &i).await.expect("stored");
    let m = |key: &str| {
        stored
            .get(key)
            .and_then(|v| v.as_m().ok())
            .unwrap_or_else(|| panic!("{key} is a map"))
    };
    assert_eq!(
        m("quality_metadata")["customer_satisfaction_rating"],
        AttributeValue::N("4".into())
    );
    assert!(m("quality_metadata")["agent_info"].as_l().is_ok());
    assert_eq!(
        m("data_source")["gcs_source"].as_m().expect("a map")["audio_uri"],
        AttributeValue::S("gs://calls/1.wav".into())
    );
    assert!(
        m("data_source")["dialogflow_source"]
            .as_m()
            .expect("a map")
            .is_empty()
    );
    assert_eq!(
        m("call_metadata")["agent_channel"],
        AttributeValue::N("2".into())
    );
    assert_eq!(
        m("phone_number")["phone_number"],
        AttributeValue::S("+14155550100".into())
    );
    assert!(stored["sources"].as_l().is_ok());
    assert_eq!(
        m("metadata")["m:channel"],
        AttributeValue::S("\"web\"".into())
    );
    // `fields` selects them like any other field; get, list and the FULL view render them.
    let some = t
        .call(
            Req::new(Method::Get)
                .owner(&o)
                .id(&i)
                .query("fields", "name,dataSource,phoneNumber"),
        )
        .await;
    assert_eq!(
        some.body,
        json!({"name": format!("conversations/{i}"), "dataSource": body["dataSource"], "phoneNumber": body["phoneNumber"]})
    );
    let listed = t.call(Req::new(Method::List).owner(&o)).await;
    assert_eq!(listed.body["conversations"][0], created);
    // A conversation without them renders none of them.
    let bare = t.create(&o, &id(), json!({"agents": ["a"]})).await;
    for field in [
        "qualityMetadata",
        "callMetadata",
        "dataSource",
        "sources",
        "phoneNumber",
        "metadata",
    ] {
        assert!(bare.get(field).is_none(), "{field} in {bare}");
    }
}

#[tokio::test]
async fn a_ccai_client_s_snake_case_leaf_path_works_in_every_stored_state() {
    let t = TestApp::new().await;
    let o = owner();
    let mask = "data_source.gcs_source.audio_uri";
    let set = json!({"dataSource": {"gcsSource": {"audioUri": "gs://new/a.wav"}}});
    // No data source yet: the parents exist anyway.
    let i = id();
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let b = patched(&t, &o, &i, mask, set.clone()).await;
    assert_eq!(
        b["dataSource"],
        json!({"gcsSource": {"audioUri": "gs://new/a.wav"}})
    );
    // The member is there with a sibling: the sibling stays.
    let i = id();
    t.create(&o, &i, json!({"agents": ["a"], "dataSource": {"gcsSource": {"audioUri": "gs://old/a.wav", "transcriptUri": "gs://old/t.json"}}})).await;
    let b = patched(&t, &o, &i, mask, set.clone()).await;
    assert_eq!(
        b["dataSource"],
        json!({"gcsSource": {"audioUri": "gs://new/a.wav", "transcriptUri": "gs://old/t.json"}})
    );
    // The other member is there: setting this one removes it.
    let i = id();
    t.create(&o, &i, json!({"agents": ["a"], "dataSource": {"dialogflowSource": {"dialogflowConversation": "projects/p/conversations/c", "audioUri": "https://x/a.wav"}}})).await;
    let b = patched(&t, &o, &i, mask, set.clone()).await;
    assert_eq!(
        b["dataSource"],
        json!({"gcsSource": {"audioUri": "gs://new/a.wav"}})
    );
    // The leaf absent from the body is removed; the last one gone, so is the data source.
    let b = patched(&t, &o, &i, "dataSource.gcsSource.audioUri", json!({})).await;
    assert!(b.get("dataSource").is_none(), "{b}");
    // And it can be set again from there.
    let b = patched(
        &t,
        &o,
        &i,
        "dataSource.dialogflowSource.audioUri",
        json!({"dataSource": {"dialogflowSource": {"audioUri": "s3://b/a"}}}),
    )
    .await;
    assert_eq!(
        b["dataSource"],
        json!({"dialogflowSource": {"audioUri": "s3://b/a"}})
    );
}

#[tokio::test]
async fn object_leaves_set_and_remove_one_at_a_time_and_whole_objects_replace() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let b = patched(&t, &o, &i, "qualityMetadata.customerSatisfactionRating,call_metadata.agent_channel",
        json!({"qualityMetadata": {"customerSatisfactionRating": 5}, "callMetadata": {"agentChannel": 7}})).await;
    assert_eq!(
        b["qualityMetadata"],
        json!({"customerSatisfactionRating": 5})
    );
    assert_eq!(b["callMetadata"], json!({"agentChannel": 7}));
    let b = patched(
        &t,
        &o,
        &i,
        "qualityMetadata.menuPath,qualityMetadata.agentInfo",
        json!({"qualityMetadata": {"menuPath": "a>b", "agentInfo": [{"agentId": "x"}]}}),
    )
    .await;
    assert_eq!(
        b["qualityMetadata"],
        json!({"customerSatisfactionRating": 5, "menuPath": "a>b", "agentInfo": [{"agentId": "x"}]})
    );
    let b = patched(
        &t,
        &o,
        &i,
        "qualityMetadata.customerSatisfactionRating",
        json!({}),
    )
    .await;
    assert_eq!(
        b["qualityMetadata"],
        json!({"menuPath": "a>b", "agentInfo": [{"agentId": "x"}]})
    );
    // The whole object: replaced, or cleared when the body leaves it out.
    let b = patched(
        &t,
        &o,
        &i,
        "qualityMetadata",
        json!({"qualityMetadata": {"waitDuration": "0s"}}),
    )
    .await;
    assert_eq!(b["qualityMetadata"], json!({"waitDuration": "0s"}));
    let b = patched(&t, &o, &i, "qualityMetadata,callMetadata", json!({})).await;
    assert!(
        b.get("qualityMetadata").is_none() && b.get("callMetadata").is_none(),
        "{b}"
    );
    // Leaves can be set again after a clear: the parent is still there.
    let b = patched(
        &t,
        &o,
        &i,
        "callMetadata.customerChannel",
        json!({"callMetadata": {"customerChannel": 0}}),
    )
    .await;
    assert_eq!(b["callMetadata"], json!({"customerChannel": 0}));
    // No mask: a named object is replaced whole.
    let b = patched(
        &t,
        &o,
        &i,
        "callMetadata",
        json!({"callMetadata": {"agentChannel": 3}}),
    )
    .await;
    assert_eq!(b["callMetadata"], json!({"agentChannel": 3}));
    let res = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .json(json!({"qualityMetadata": {"menuPath": "x"}})),
        )
        .await;
    assert_eq!(res.body["qualityMetadata"], json!({"menuPath": "x"}));
    assert_eq!(res.body["callMetadata"], json!({"agentChannel": 3}));
}

#[tokio::test]
async fn metadata_keys_are_set_and_removed_in_place_within_16_kib() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let b = patched(
        &t,
        &o,
        &i,
        "metadata.channel,metadata.Score_2",
        json!({"metadata": {"channel": "web", "Score_2": {"x": [1, null]}}}),
    )
    .await;
    assert_eq!(
        b["metadata"],
        json!({"channel": "web", "Score_2": {"x": [1, null]}})
    );
    let b = patched(&t, &o, &i, "metadata.channel", json!({})).await;
    assert_eq!(b["metadata"], json!({"Score_2": {"x": [1, null]}}));
    let b = patched(&t, &o, &i, "metadata.Score_2", json!({"metadata": {}})).await;
    assert!(b.get("metadata").is_none(), "the last key removed: {b}");
    // Keys added one request at a time stay within 16 KiB in all.
    let big = "x".repeat(6_000);
    for k in ["a", "b"] {
        patched(
            &t,
            &o,
            &i,
            &format!("metadata.{k}"),
            json!({"metadata": {k: big}}),
        )
        .await;
    }
    let res = t
        .call(patch(&o, &i, "metadata.c", json!({"metadata": {"c": big}})))
        .await;
    res.assert_problem(422, "INVALID_ARGUMENT");
    assert_eq!(res.body["errors"][0]["field"], "metadata");
    // Rewriting a key in place is no growth, even after the count ran ahead.
    for _ in 0..3 {
        let res = t
            .call(patch(&o, &i, "metadata.a", json!({"metadata": {"a": big}})))
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
    }
    let stored = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(
        stored.body["metadata"].as_object().map(|m| m.len()),
        Some(2)
    );
}

#[tokio::test]
async fn sources_and_the_star_mask_replace_every_seed_field() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let body: Value = serde_json::from_str(FULL).expect("json");
    t.create(&o, &i, body.clone()).await;
    // A Looker client replaces its sources.
    let b = patched(
        &t,
        &o,
        &i,
        "sources",
        json!({"sources": [{"model": "m2", "explore": "e2"}]}),
    )
    .await;
    assert_eq!(b["sources"], json!([{"model": "m2", "explore": "e2"}]));
    let b = patched(&t, &o, &i, "sources", json!({})).await;
    assert!(b.get("sources").is_none());
    // `*` replaces every mutable field: those left out are cleared; phoneNumber is immutable and
    // checked only when named.
    let b = patched(
        &t,
        &o,
        &i,
        "*",
        json!({"agents": ["b"], "callMetadata": {"customerChannel": 9}}),
    )
    .await;
    assert_eq!(b["callMetadata"], json!({"customerChannel": 9}));
    for gone in ["qualityMetadata", "dataSource", "metadata", "sources"] {
        assert!(b.get(gone).is_none(), "{gone} in {b}");
    }
    assert_eq!(b["phoneNumber"], body["phoneNumber"]);
}

#[tokio::test]
async fn phone_number_is_immutable_after_create_leaf_by_leaf_too() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let created = t
        .create(&o, &i, json!({"agents": ["a"], "phoneNumber": {"countryCode": 44, "phoneNumber": "+442071234567"}}))
        .await;
    for (mask, body) in [
        (
            "phoneNumber",
            json!({"phoneNumber": {"countryCode": 44, "phoneNumber": "+442071234568"}}),
        ),
        (
            "phone_number.country_code",
            json!({"phoneNumber": {"countryCode": 1}}),
        ),
        ("phoneNumber.phoneNumber", json!({})),
        (
            "*",
            json!({"agents": ["a"], "phoneNumber": {"countryCode": 1, "phoneNumber": "+442071234567"}}),
        ),
    ] {
        let res = t.call(patch(&o, &i, mask, body)).await;
        res.assert_problem(400, "INVALID_ARGUMENT");
        assert!(
            res.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("phoneNumber is immutable")),
            "{mask}: {}",
            res.body
        );
    }
    // The same values are accepted (and change nothing but the version).
    let b = patched(
        &t,
        &o,
        &i,
        "phoneNumber.countryCode,displayName",
        json!({"displayName": "x", "phoneNumber": {"countryCode": 44}}),
    )
    .await;
    assert_eq!(b["phoneNumber"], created["phoneNumber"]);
    // Never set, it cannot be set later.
    let j = id();
    t.create(&o, &j, json!({"agents": ["a"]})).await;
    t.call(patch(
        &o,
        &j,
        "phoneNumber",
        json!({"phoneNumber": {"phoneNumber": "+14155550100"}}),
    ))
    .await
    .assert_problem(400, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn every_broken_field_is_in_one_422_with_a_missing_required_one() {
    let t = TestApp::new().await;
    let o = owner();
    let res = t
        .call(
            Req::new(Method::Create)
                .owner(&o)
                .json(json!({"displayName": "x".repeat(300), "labels": {"Bad": "v"},
                    "qualityMetadata": {"customerSatisfactionRating": 0, "agentInfo": [{"team": "t"}]},
                    "callMetadata": {"agentChannel": 256},
                    "dataSource": {"gcsSource": {"audioUri": "calls/1.wav"}},
                    "sources": [{"model": "m"}], "phoneNumber": {"countryCode": 0}})),
        )
        .await;
    res.assert_problem(422, "INVALID_ARGUMENT");
    assert_eq!(
        fields(&res),
        [
            "agents",
            "callMetadata.agentChannel",
            "dataSource.gcsSource.audioUri",
            "displayName",
            "labels.Bad",
            "phoneNumber.countryCode",
            "qualityMetadata.agentInfo[0].agentId",
            "qualityMetadata.customerSatisfactionRating",
            "sources[0].explore",
        ]
    );
    // A mask naming agents needs them: listed with the others.
    let i = id();
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let res = t
        .call(patch(
            &o,
            &i,
            "agents,category",
            json!({"category": "c".repeat(65)}),
        ))
        .await;
    res.assert_problem(422, "INVALID_ARGUMENT");
    assert_eq!(fields(&res), ["agents", "category"]);
    // Messages too: a missing type with a broken content and tool calls.
    let res = t
        .call(
            Req::new(Method::Append)
                .owner(&o)
                .id(&i)
                .json(json!({"content": 5, "toolCallId": "bad id"})),
        )
        .await;
    res.assert_problem(422, "INVALID_ARGUMENT");
    assert_eq!(fields(&res), ["content", "toolCallId", "type"]);
}

#[tokio::test]
async fn overlapping_unknown_and_malformed_nested_paths_are_400_and_write_nothing() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let created = t.create(&o, &i, json!({"agents": ["a"]})).await;
    for mask in [
        "dataSource,dataSource.gcsSource.audioUri",
        "data_source.gcs_source,dataSource.gcsSource.transcriptUri",
        "metadata,metadata.a",
        "labels.a,labels",
        "qualityMetadata.agentInfo.agentId",
        "qualityMetadata.colour",
        "metadata.a.b",
        "metadata.1a",
        "labels.A",
    ] {
        t.counter.take();
        t.call(patch(&o, &i, mask, json!({})))
            .await
            .assert_problem(400, "INVALID_ARGUMENT");
        assert!(
            t.counter.take().is_empty(),
            "{mask}: nothing reached DynamoDB"
        );
    }
    t.call(patch(
        &o,
        &i,
        "dataSource",
        json!({"dataSource": {"gcsSource": {"colour": "x"}}}),
    ))
    .await
    .assert_problem(400, "INVALID_ARGUMENT");
    let res = t
        .call(patch(
            &o,
            &i,
            "dataSource",
            json!({"dataSource": {"gcsSource": {}, "dialogflowSource": {}}}),
        ))
        .await;
    res.assert_problem(422, "INVALID_ARGUMENT");
    assert_eq!(fields(&res), ["dataSource"]);
    let after = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(after.body, created);
}

#[tokio::test]
async fn allow_missing_creates_with_the_seed_fields() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let body: Value = serde_json::from_str(FULL).expect("json");
    let res = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .query("updateMask", "data_source.gcs_source.audio_uri")
                .query("allowMissing", "true")
                .json(body.clone()),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    for field in [
        "qualityMetadata",
        "callMetadata",
        "dataSource",
        "sources",
        "phoneNumber",
    ] {
        assert_eq!(res.body[field], body[field], "{field}");
    }
    // And the created item takes leaf writes at once.
    let b = patched(&t, &o, &i, "qualityMetadata.menuPath", json!({})).await;
    assert!(b["qualityMetadata"].get("menuPath").is_none());
}
