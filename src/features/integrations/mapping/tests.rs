//! The transforms (good input, null, wrong type), their option checks, and
//! the mapping semantics of SPEC §9.4.

#![allow(
    clippy::needless_pass_by_value,
    reason = "the helpers take json! literals by value, so each case reads as one line"
)]

use serde_json::{Map, Value, json};

use super::transforms::{Applied, OptionProblem, Transform, check};
use super::*;
use crate::domain::validation::Violations;
use crate::features::integrations::model::validate_field_mapping;

fn t(name: &str, options: Value) -> Transform {
    let options = options.as_object().cloned();
    check(Some(name), options.as_ref())
        .expect("valid options")
        .expect("a transform")
}

fn ok(tr: &Transform, input: Value) -> Value {
    tr.apply(Some(input.clone()))
        .unwrap_or_else(|e| panic!("{tr:?} on {input}: {e}"))
        .value
        .unwrap_or(Value::Null)
}

fn err(tr: &Transform, input: Value) -> String {
    tr.apply(Some(input.clone()))
        .err()
        .unwrap_or_else(|| panic!("{tr:?} on {input} should fail"))
}

/// Every transform but nullToDefault keeps null null and absent absent.
fn keeps_null(tr: &Transform) {
    assert_eq!(tr.apply(None), Ok(applied(None)), "{tr:?}");
    assert_eq!(
        tr.apply(Some(Value::Null)),
        Ok(applied(Some(Value::Null))),
        "{tr:?}"
    );
}

fn applied(value: Option<Value>) -> Applied {
    Applied {
        value,
        warning: None,
    }
}

#[test]
fn date_to_iso_reads_salesforce_and_common_forms() {
    let tr = t("dateToISO", json!({}));
    for (input, want) in [
        (
            json!("2024-05-01T10:00:00.000+0000"),
            "2024-05-01T10:00:00.000Z",
        ),
        (
            json!("2024-05-01T12:30:00.250+0200"),
            "2024-05-01T10:30:00.250Z",
        ),
        (json!("2024-05-01T10:00:00Z"), "2024-05-01T10:00:00.000Z"),
        (
            json!("2024-05-01T10:00:00+01:00"),
            "2024-05-01T09:00:00.000Z",
        ),
        (json!("2024-05-01"), "2024-05-01T00:00:00.000Z"),
        (json!("2024-05-01T10:00:00"), "2024-05-01T10:00:00.000Z"),
        (json!("2024-05-01 10:00:00.5"), "2024-05-01T10:00:00.500Z"),
        (json!(1_714_557_600), "2024-05-01T10:00:00.000Z"),
        (
            json!("2024-05-01T10:00:00-0130"),
            "2024-05-01T11:30:00.000Z",
        ),
        (
            json!("2024-05-01T10:00:00.123456789+05:30"),
            "2024-05-01T04:30:00.123Z",
        ),
        (
            json!("2024-05-01T00:10:00.1+0100"),
            "2024-04-30T23:10:00.100Z",
        ),
        (json!("2024-02-29"), "2024-02-29T00:00:00.000Z"),
        (json!("2024-05-01T10:00+0000"), "2024-05-01T10:00:00.000Z"),
    ] {
        assert_eq!(ok(&tr, input.clone()), json!(want), "{input}");
    }
    assert_eq!(ok(&tr, json!("")), Value::Null, "blank is no date");
    keeps_null(&tr);
    assert!(err(&tr, json!("yesterday")).contains("is not a date"));
    for bad in [
        "2024-13-01",
        "2023-02-29",
        "2024-05-01T25:00:00Z",
        "2024-05-01T10:00:00.+0000",
        "2024-05-01T10:00:00+00",
        "2024-05-01T10:00:00 junk",
    ] {
        assert!(err(&tr, json!(bad)).contains("is not a date"), "{bad}");
    }
    assert!(err(&tr, json!(true)).contains("not a boolean"));
    assert!(err(&tr, json!({"a": 1})).contains("not an object"));
}

#[test]
fn date_to_unix_gives_whole_seconds() {
    let tr = t("dateToUnix", json!({}));
    assert_eq!(
        ok(&tr, json!("2024-05-01T10:00:00.000+0000")),
        json!(1_714_557_600)
    );
    assert_eq!(ok(&tr, json!("2024-05-01")), json!(1_714_521_600));
    keeps_null(&tr);
    err(&tr, json!([1]));
    err(&tr, json!("not a date"));
}

#[test]
fn string_to_number() {
    let tr = t("stringToNumber", json!({}));
    assert_eq!(ok(&tr, json!("10000.50")), json!(10000.5));
    assert_eq!(ok(&tr, json!(" 42 ")), json!(42));
    assert_eq!(ok(&tr, json!("-3")), json!(-3));
    assert_eq!(ok(&tr, json!(7.5)), json!(7.5), "numbers pass");
    assert_eq!(ok(&tr, json!("")), Value::Null);
    keeps_null(&tr);
    assert!(err(&tr, json!("invalid")).contains("is not a number"));
    assert!(err(&tr, json!("NaN")).contains("is not a number"));
    assert!(err(&tr, json!("inf")).contains("is not a number"));
    err(&tr, json!(true));
    err(&tr, json!([]));
}

#[test]
fn round_to_decimals_with_its_default_and_option() {
    let two = t("roundToDecimals", json!({}));
    assert_eq!(two, Transform::RoundToDecimals { decimals: 2 });
    assert_eq!(ok(&two, json!(1.23456)), json!(1.23));
    assert_eq!(ok(&two, json!("2.675")), json!(2.68));
    assert_eq!(ok(&two, json!(-1.005)), json!(-1.0));
    let zero = t("roundToDecimals", json!({"decimals": 0}));
    assert_eq!(ok(&zero, json!(2.5)), json!(3));
    assert_eq!(ok(&zero, json!(1e300)), json!(1e300));
    keeps_null(&two);
    err(&two, json!("abc"));
    err(&two, json!(false));
}

#[test]
fn case_and_trim_take_strings_only() {
    let lower = t("toLowerCase", json!({}));
    let upper = t("toUpperCase", json!({}));
    let trim = t("trim", json!({}));
    assert_eq!(ok(&lower, json!("ÀbC")), json!("àbc"));
    assert_eq!(ok(&upper, json!("straße")), json!("STRASSE"));
    assert_eq!(ok(&trim, json!("  a b \n")), json!("a b"));
    for tr in [&lower, &upper, &trim] {
        keeps_null(tr);
        assert!(err(tr, json!(1)).contains("takes a string, not a number"));
        err(tr, json!(["a"]));
    }
}

#[test]
fn array_to_string_joins_scalars() {
    let tr = t("arrayToString", json!({}));
    assert_eq!(ok(&tr, json!(["a", 1, true, null])), json!("a, 1, true"));
    assert_eq!(ok(&tr, json!("already")), json!("already"));
    let semi = t("arrayToString", json!({"separator": ";"}));
    assert_eq!(ok(&semi, json!(["a", "b"])), json!("a;b"));
    assert_eq!(ok(&semi, json!([])), json!(""));
    keeps_null(&tr);
    err(&tr, json!(3));
    assert!(err(&tr, json!([{"x": 1}])).contains("holding an object"));
}

#[test]
fn split_to_array_reads_multi_picklists() {
    let tr = t("splitToArray", json!({}));
    assert_eq!(ok(&tr, json!("a;b; c;;")), json!(["a", "b", "c"]));
    assert_eq!(ok(&tr, json!("")), json!([]));
    assert_eq!(ok(&tr, json!(["x"])), json!(["x"]), "arrays pass");
    let comma = t("splitToArray", json!({"separator": ","}));
    assert_eq!(ok(&comma, json!("1, 2")), json!(["1", "2"]));
    keeps_null(&tr);
    err(&tr, json!(1));
    err(&tr, json!({}));
}

#[test]
fn array_first() {
    let tr = t("arrayFirst", json!({}));
    assert_eq!(ok(&tr, json!([3, 4])), json!(3));
    assert_eq!(tr.apply(Some(json!([]))), Ok(applied(None)), "absent");
    keeps_null(&tr);
    err(&tr, json!("a"));
}

#[test]
fn booleans_to_text() {
    let s = t("booleanToString", json!({}));
    assert_eq!(ok(&s, json!(true)), json!("true"));
    assert_eq!(ok(&s, json!("FALSE")), json!("false"));
    keeps_null(&s);
    assert!(err(&s, json!(1)).contains("the number 1"));
    let yn = t("booleanToYesNo", json!({}));
    for (input, want) in [
        (json!(true), "Yes"),
        (json!("true"), "Yes"),
        (json!(1), "Yes"),
        (json!(false), "No"),
        (json!("False"), "No"),
        (json!(0), "No"),
    ] {
        assert_eq!(ok(&yn, input.clone()), json!(want), "{input}");
    }
    keeps_null(&yn);
    assert!(err(&yn, json!("maybe")).contains("\"maybe\""));
    err(&yn, json!(2));
}

#[test]
fn null_to_default_fills_absent_null_and_empty() {
    let tr = t("nullToDefault", json!({"default": "n/a"}));
    assert_eq!(tr.apply(None), Ok(applied(Some(json!("n/a")))));
    assert_eq!(ok(&tr, Value::Null), json!("n/a"));
    assert_eq!(ok(&tr, json!("")), json!("n/a"));
    assert_eq!(ok(&tr, json!("x")), json!("x"));
    assert_eq!(ok(&tr, json!(0)), json!(0));
    let to_null = t("nullToDefault", json!({"default": null}));
    assert_eq!(ok(&to_null, json!("")), Value::Null);
}

#[test]
fn value_map_exact_then_folded_then_default() {
    let tr = t(
        "valueMap",
        json!({"map": {"Decision Maker": "decision_maker", "1": "one", "true": "yes"}}),
    );
    assert_eq!(ok(&tr, json!("Decision Maker")), json!("decision_maker"));
    assert_eq!(ok(&tr, json!(" decision maker ")), json!("decision_maker"));
    assert_eq!(ok(&tr, json!(1)), json!("one"));
    assert_eq!(ok(&tr, json!(true)), json!("yes"));
    let miss = tr.apply(Some(json!("Other"))).expect("applies");
    assert_eq!(miss.value, Some(json!("Other")), "kept");
    assert!(miss.warning.is_some_and(|w| w.contains("not in the map")));
    keeps_null(&tr);
    err(&tr, json!(["Decision Maker"]));
    let with_default = t("valueMap", json!({"map": {"a": 1}, "default": 0}));
    assert_eq!(ok(&with_default, json!("b")), json!(0));
    let to_null = t("valueMap", json!({"map": {"a": 1}, "default": null}));
    assert_eq!(ok(&to_null, json!("b")), Value::Null);
}

#[test]
fn messages_do_not_copy_long_values() {
    let tr = t("stringToNumber", json!({}));
    let long = "x".repeat(500);
    assert!(err(&tr, json!(long)).len() < 100);
}

fn problems(name: Option<&str>, options: Value) -> Vec<OptionProblem> {
    let options = options.as_object().cloned();
    check(name, options.as_ref()).expect_err("refused")
}

#[test]
fn options_are_checked() {
    let opt = |k: &str, d: &str| OptionProblem::Option(k.into(), d.into());
    assert_eq!(
        problems(Some("roundToDecimals"), json!({"decimals": "2"})),
        [opt("decimals", "must be an integer from 0 to 10")]
    );
    assert_eq!(
        problems(Some("roundToDecimals"), json!({"decimals": 11})),
        [opt("decimals", "must be an integer from 0 to 10")]
    );
    assert_eq!(
        problems(Some("roundToDecimals"), json!({"decimals": 1.5})),
        [opt("decimals", "must be an integer from 0 to 10")]
    );
    assert_eq!(
        problems(Some("trim"), json!({"x": 1})),
        [opt("x", "unknown option: trim takes no options")]
    );
    assert_eq!(
        problems(Some("splitToArray"), json!({"separator": "", "sep": ";"})),
        [
            opt("sep", "unknown option; splitToArray takes: separator"),
            opt("separator", "must be a string of 1 to 16 characters")
        ]
    );
    assert_eq!(
        problems(Some("nullToDefault"), json!({})),
        [opt("default", "is required")]
    );
    assert_eq!(
        problems(Some("valueMap"), json!({"map": []})),
        [opt("map", "must be an object of 1 to 1000 entries")]
    );
    assert_eq!(
        problems(Some("valueMap"), json!({"map": {}})),
        [opt("map", "must be an object of 1 to 1000 entries")]
    );
    assert_eq!(
        problems(None, json!({"decimals": 2})),
        [OptionProblem::OptionsWithoutTransform]
    );
    assert_eq!(
        problems(Some("eval"), json!({})),
        [OptionProblem::UnknownTransform("eval".into())]
    );
    assert_eq!(check(None, None), Ok(None));
    assert_eq!(check(Some("trim"), None), Ok(Some(Transform::Trim)));
}

fn fm(value: Value) -> FieldMapping {
    serde_json::from_value(value).expect("field mapping")
}

#[test]
fn validation_names_each_bad_option_by_pointer() {
    let mut v = Violations::default();
    let p = "/syncConfig/entityMappings/0/fieldMappings/2";
    validate_field_mapping(
        p,
        &fm(json!({"externalField": "Amount", "shardField": "amount",
                   "transform": "roundToDecimals", "transformOptions": {"decimals": "x", "a/b": 1}})),
        &mut v,
    );
    validate_field_mapping(
        "/x",
        &fm(json!({"externalField": "A", "shardField": "a", "transformOptions": {}})),
        &mut v,
    );
    validate_field_mapping(
        "/y",
        &fm(json!({"externalField": "A", "shardField": "a", "transform": "valueMap"})),
        &mut v,
    );
    validate_field_mapping(
        "/z",
        &fm(json!({"externalField": "A", "shardField": "a", "transform": "nope"})),
        &mut v,
    );
    let pointers: Vec<&str> = v.as_slice().iter().map(|x| x.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        [
            "/syncConfig/entityMappings/0/fieldMappings/2/transformOptions/a~1b",
            "/syncConfig/entityMappings/0/fieldMappings/2/transformOptions/decimals",
            "/x/transformOptions",
            "/y/transformOptions/map",
            "/z/transform",
        ]
    );
}

fn record(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("object")
}

#[test]
fn mapping_reads_paths_defaults_transforms_and_required() {
    let fields = vec![
        fm(
            json!({"externalField": "Name", "shardField": "name", "required": true, "transform": "trim"}),
        ),
        fm(
            json!({"externalField": "Amount", "shardField": "amount", "transform": "stringToNumber"}),
        ),
        fm(json!({"externalField": "Account.Industry", "shardField": "industry"})),
        fm(
            json!({"externalField": "Probability", "shardField": "probability", "defaultValue": 50}),
        ),
        fm(
            json!({"externalField": "CloseDate", "shardField": "closeDate", "transform": "dateToISO"}),
        ),
        fm(json!({"externalField": "Gone", "shardField": "gone"})),
        fm(json!({"externalField": "Cleared", "shardField": "cleared"})),
        fm(json!({"externalField": "Secret__c", "shardField": "secret", "direction": "outbound"})),
        fm(
            json!({"externalField": "Tags__c", "shardField": "tags", "direction": "both",
                  "transform": "splitToArray"}),
        ),
    ];
    let m = CompiledMapping::inbound(&fields);
    let out = m.apply(&record(json!({
        "attributes": {"type": "Opportunity"},
        "Name": " Deal ", "Amount": "10000.50", "Account": {"Industry": "Energy"},
        "CloseDate": "2024-05-01", "Cleared": null, "Secret__c": "s", "Tags__c": "a;b"
    })));
    assert_eq!(
        Value::Object(out.data.clone()),
        json!({"name": "Deal", "amount": 10000.5, "industry": "Energy", "probability": 50,
               "closeDate": "2024-05-01T00:00:00.000Z", "cleared": null, "tags": ["a", "b"]})
    );
    assert!(out.is_valid() && out.warnings.is_empty(), "{out:?}");
    assert_eq!(
        m.external_fields(),
        [
            "Name",
            "Amount",
            "Account.Industry",
            "Probability",
            "CloseDate",
            "Gone",
            "Cleared",
            "Tags__c"
        ]
    );

    // Required missing, a transform refusing its input, a relationship
    // that is null: errors name the shard field; other fields still map.
    let bad = m.apply(&record(
        json!({"Name": "  ", "Amount": true, "Account": null}),
    ));
    assert_eq!(
        bad.errors
            .iter()
            .map(|e| e.field.as_str())
            .collect::<Vec<_>>(),
        ["name", "amount"]
    );
    assert!(bad.errors[0].message.contains("required field name"));
    assert!(bad.errors[1].message.contains("stringToNumber"));
    assert_eq!(Value::Object(bad.data), json!({"probability": 50}));
}

#[test]
fn a_stored_mapping_that_no_longer_compiles_fails_each_record() {
    let m = CompiledMapping::inbound(&[fm(
        json!({"externalField": "A", "shardField": "a", "transform": "roundToDecimals",
               "transformOptions": {"decimals": -1}}),
    )]);
    let out = m.apply(&record(json!({"A": 1.234})));
    assert_eq!(out.errors.len(), 1);
    assert!(out.errors[0].message.contains("decimals"));
    assert!(out.data.is_empty());
}

#[test]
fn value_map_warnings_reach_the_record() {
    let m = CompiledMapping::inbound(&[fm(
        json!({"externalField": "Role", "shardField": "role", "transform": "valueMap",
               "transformOptions": {"map": {"Influencer": "influencer"}}}),
    )]);
    let out = m.apply(&record(json!({"Role": "Other"})));
    assert!(out.is_valid());
    assert_eq!(out.warnings.len(), 1);
    assert_eq!(out.warnings[0].field, "role");
}
