//! Go text/template behaviour, case by case, as Go 1.19 (the Go of Prometheus 2.42
//! and Alertmanager 0.25) renders it. Expected outputs are Go's.

use std::collections::BTreeMap;

use sextant_template::{CallError, Funcs, Map, Set, Template, Value};

fn funcs() -> Funcs {
    let mut f = Funcs::new();
    f.insert("fail", |_| Err(CallError::Failed("it failed".into())));
    f.insert("upper", |args| match args {
        [Value::String(s)] => Ok(Value::from(s.to_uppercase())),
        _ => Err(CallError::Args("wrong number of args for upper: want 1 got 0".into())),
    });
    f.insert("three", |_| Ok(Value::Int(3)));
    f
}

fn data() -> Value {
    let mut m = BTreeMap::new();
    m.insert(
        "Labels".to_owned(),
        Value::from(Map::strings([("job", "api"), ("instance", "h1:9100")])),
    );
    m.insert("Value".to_owned(), Value::Float(1234567.891));
    m.insert("Two".to_owned(), Value::Float(2.0));
    m.insert("Nan".to_owned(), Value::Float(f64::NAN));
    m.insert(
        "List".to_owned(),
        Value::list(vec![Value::from("a"), Value::from("b"), Value::from("c")]),
    );
    m.insert("Empty".to_owned(), Value::list(vec![]));
    Value::from(Map::values(m))
}

fn render(text: &str) -> Result<String, String> {
    Template::parse("test", text, funcs())
        .map_err(|e| e.to_string())?
        .execute(data())
        .map_err(|e| e.to_string())
}

fn ok(text: &str, want: &str) {
    assert_eq!(render(text).as_deref(), Ok(want), "{text}");
}

fn err(text: &str, want: &str) {
    let got = render(text).expect_err(text);
    assert!(got.contains(want), "{text}: {got:?} lacks {want:?}");
}

#[test]
fn text_actions_and_numbers() {
    ok("plain text", "plain text");
    ok("{{ 1 }}", "1");
    ok("{{ 1.0 }}", "1");
    ok("{{ 1e3 }}", "1000");
    ok("{{ 0x10 }}", "16");
    ok("{{ 1_000 }}", "1000");
    ok("{{ 'a' }}", "97");
    ok("{{ -3 }}", "-3");
    ok("{{ .Value }}", "1.234567891e+06");
    ok("{{ .Two }}", "2");
    ok("{{ .Nan }}", "NaN");
    ok("{{ \"<b>\" }}", "<b>");
    ok("{{ `raw\\n` }}", "raw\\n");
    ok("{{ .Labels }}", "map[instance:h1:9100 job:api]");
    ok("{{ .List }}", "[a b c]");
    ok("{{ true }} {{ false }}", "true false");
}

#[test]
fn trimming_and_comments() {
    ok("a {{- \" b \" -}} c", "a b c");
    ok("a  \n {{- 1 }}", "a1");
    ok("{{ 1 -}}  \n  b", "1b");
    ok("x{{/* a comment */}}y", "xy");
    ok("x {{- /* trimmed */ -}} y", "xy");
    ok("{{-3}}", "-3");
}

#[test]
fn fields_maps_and_missing_keys() {
    ok("{{ .Labels.job }}", "api");
    ok("{{ .Labels.missing }}", "");
    ok("{{ .Missing }}", "<no value>");
    ok("{{ index .Labels \"instance\" }}", "h1:9100");
    ok("{{ index .Labels \"nope\" }}", "");
    ok("{{ index .List 1 }}", "b");
    ok("{{ index \"abc\" 1 }}", "98");
    err("{{ .Labels.job.x }}", "can't evaluate field x in type string");
    err("{{ index .Labels 1 }}", "value has type int; should be string");
    err("{{ index .List 5 }}", "index out of range: 5");
}

#[test]
fn variables_and_scopes() {
    ok("{{ $x := 5 }}{{ $x }}", "5");
    ok("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}", "2");
    ok("{{ $ := 1 }}", "");
    ok("{{ with $x := .Labels.job }}{{ $x }}{{ end }}", "api");
    ok("{{ $.Labels.job }}", "api");
    err(
        "{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}",
        "undefined variable \"$y\"",
    );
    err("{{ $nope }}", "undefined variable \"$nope\"");
}

#[test]
fn conditionals_and_truth() {
    ok("{{ if .Nan }}yes{{ end }}", "yes");
    ok("{{ if 0 }}yes{{ else }}no{{ end }}", "no");
    ok("{{ if \"\" }}yes{{ else if 1 }}one{{ else }}no{{ end }}", "one");
    ok("{{ if .Empty }}yes{{ else }}empty{{ end }}", "empty");
    ok("{{ if .Missing }}yes{{ else }}missing{{ end }}", "missing");
    ok("{{ with .Labels.job }}[{{ . }}]{{ end }}", "[api]");
    ok("{{ with .Labels.nope }}x{{ else }}none{{ end }}", "none");
    err("{{ if true }}{{ else with 1 }}{{ end }}", "unexpected <with> in else");
}

#[test]
fn range_over_slices_maps_and_nothing() {
    ok("{{ range .List }}{{ . }}:{{ end }}", "a:b:c:");
    ok("{{ range $i, $v := .List }}{{ $i }}={{ $v }} {{ end }}", "0=a 1=b 2=c ");
    ok("{{ range $v := .List }}{{ $v }}{{ end }}", "abc");
    ok(
        "{{ range $k, $v := .Labels }}{{ $k }}={{ $v }};{{ end }}",
        "instance=h1:9100;job=api;",
    );
    ok("{{ range .Empty }}x{{ else }}none{{ end }}", "none");
    ok("{{ range .Missing }}x{{ else }}none{{ end }}", "none");
    ok(
        "{{ range .List }}{{ if eq . \"b\" }}{{ break }}{{ end }}{{ . }}{{ end }}",
        "a",
    );
    ok(
        "{{ range .List }}{{ if eq . \"b\" }}{{ continue }}{{ end }}{{ . }}{{ end }}",
        "ac",
    );
    err("{{ range 3 }}{{ end }}", "range can't iterate over 3");
    err("{{ break }}", "{{break}} outside {{range}}");
}

#[test]
fn comparisons_are_typed_as_in_go() {
    ok("{{ eq 1 1 }} {{ eq 1 2 3 1 }} {{ ne \"a\" \"b\" }}", "true true true");
    ok(
        "{{ lt 1 2 }} {{ le 2 2 }} {{ gt 1.5 1.0 }} {{ ge \"b\" \"a\" }}",
        "true true true true",
    );
    ok("{{ eq .Nan .Nan }}", "false");
    ok("{{ eq .Labels.job \"api\" }}", "true");
    ok("{{ eq .Missing \"x\" }}", "false");
    err(
        "{{ eq .Value 1 }}",
        "error calling eq: incompatible types for comparison",
    );
    err(
        "{{ gt .Value 1 }}",
        "error calling gt: incompatible types for comparison",
    );
    err("{{ lt true false }}", "error calling lt: invalid type for comparison");
    err("{{ eq 1 }}", "error calling eq: missing argument for comparison");
}

#[test]
fn builtins() {
    ok(
        "{{ and 1 0 }} {{ and 1 2 }} {{ or 0 \"\" }} {{ or 0 \"x\" }} {{ not 0 }}",
        "0 2  x true",
    );
    ok("{{ and 0 (fail) }}", "0");
    ok("{{ len \"héllo\" }} {{ len .List }} {{ len .Labels }}", "6 3 2");
    ok("{{ slice \"abcdef\" 1 3 }} {{ slice .List 1 }}", "bc [b c]");
    ok(
        "{{ print 1 2 }}|{{ print \"a\" 1 \"b\" }}|{{ println \"a\" 1 }}",
        "1 2|a1b|a 1\n",
    );
    ok("{{ printf \"%.2f\" .Value }}", "1234567.89");
    ok("{{ printf \"%d\" .Value }}", "%!d(float64=1.234567891e+06)");
    ok("{{ printf \"%s-%d\" \"a\" 3 }}", "a-3");
    ok(
        "{{ html \"<a href='x'>&\\\"\" }}",
        "&lt;a href=&#39;x&#39;&gt;&amp;&#34;",
    );
    ok("{{ js \"it's <x>\" }}", "it\\'s \\u003Cx\\u003E");
    ok("{{ urlquery \"a b/c&d\" }}", "a+b%2Fc%26d");
    ok("{{ .Labels.job | printf \"%s!\" }}", "api!");
    ok("{{ \"x\" | upper | printf \"%s%s\" \"y\" }}", "yX");
    ok("{{ three }}", "3");
    ok("{{ printf \"%d\" three }}", "3");
    err("{{ len 3 }}", "error calling len: len of type int");
    err("{{ not }}", "wrong number of args for not: want 1 got 0");
}

#[test]
fn errors_have_go_positions_and_nodes() {
    assert_eq!(
        render("{{ fail }}").unwrap_err(),
        "template: test:1:3: executing \"test\" at <fail>: error calling fail: it failed"
    );
    assert_eq!(
        render("line one\n  {{ .Labels.job.x }}").unwrap_err(),
        "template: test:2:5: executing \"test\" at <.Labels.job.x>: can't evaluate field x in type string"
    );
    assert_eq!(render("{{").unwrap_err(), "template: test:1: unclosed action");
    assert_eq!(
        render("{{ nofunc }}").unwrap_err(),
        "template: test:1: function \"nofunc\" not defined"
    );
    assert_eq!(render("{{ end }}").unwrap_err(), "template: test:1: unexpected {{end}}");
    assert_eq!(render("{{ if 1 }}").unwrap_err(), "template: test:1: unexpected EOF");
    err("{{ nil }}", "nil is not a command");
    err("{{ 1 2 }}", "can't give argument to non-function 1");
    err("{{ \u{a0} }}", "unrecognized character in action: U+00A0");
}

#[test]
fn define_template_and_block() {
    ok("{{ define \"x\" }}[{{ . }}]{{ end }}{{ template \"x\" 5 }}", "[5]");
    ok(
        "{{ template \"x\" \"late\" }}{{ define \"x\" }}<{{ . }}>{{ end }}",
        "<late>",
    );
    ok("{{ block \"b\" .Labels.job }}({{ . }}){{ end }}", "(api)");
    err("{{ template \"nope\" }}", "template \"nope\" not defined");
    // Templates of a set are shared; a later file's define replaces an earlier one.
    let mut set = Set::new(funcs());
    set.add("a.tmpl", "{{ define \"greet\" }}hello {{ . }}{{ end }}")
        .unwrap();
    set.add("b.tmpl", "{{ define \"greet\" }}hi {{ . }}{{ end }}").unwrap();
    let t = set.parse("field", "{{ template \"greet\" \"you\" }}!").unwrap();
    assert_eq!(t.execute(Value::Nil).unwrap(), "hi you!");
    assert_eq!(set.execute("greet", Value::from("me")).unwrap(), "hi me");
}
