//! Alertmanager 0.25's configuration checks (`config/config_test.go`,
//! `config/notifiers_test.go`, `config/testdata`), with its messages.

use std::path::Path;

use super::*;

fn load(text: &str) -> Result<Config, String> {
    parse(text, Path::new("am.yml"))
}

fn err(text: &str) -> String {
    let e = load(text).expect_err(text);
    // Errors are located: `am.yml:LINE:COL: message`.
    assert!(e.starts_with("am.yml:"), "{e}");
    e.splitn(4, ':').nth(3).unwrap_or_default().trim().to_owned()
}

const R: &str = "receivers: [{name: team-X}]\n";

#[test]
fn routes_and_receivers_are_checked_as_alertmanager_checks_them() {
    for (text, want) in [
        ("", "no route provided in config"),
        ("receivers: [{name: a}]\n", "no routes provided"),
        (
            "route: {group_wait: 30s}\nreceivers: [{name: a}]\n",
            "root route must specify a default receiver",
        ),
        (
            "route: {receiver: team-X}\nreceivers: [{name: team-X}, {name: team-X}]\n",
            "notification config name \"team-X\" is not unique",
        ),
        (
            "route: {receiver: team-X}\nreceivers: [{name: team-Y}]\n",
            "undefined receiver \"team-X\" used in route",
        ),
        (
            "route: {receiver: team-X, routes: [{routes: [{receiver: nonexistent}]}]}\nreceivers: [{name: team-X}]\n",
            "undefined receiver \"nonexistent\" used in route",
        ),
        (
            "route: {receiver: team-X}\nreceivers: [{name: ''}]\n",
            "missing name in receiver",
        ),
        (
            "route: {receiver: team-X, routes: [{mute_time_intervals: [business_hours]}]}\n",
            "undefined time interval \"business_hours\" used in route",
        ),
        (
            "route: {receiver: team-X}\ntime_intervals: [{time_intervals: [{}]}]\n",
            "missing name in time interval",
        ),
        (
            "route: {receiver: team-X}\nmute_time_intervals: [{name: duplicate, time_intervals: [{}]}, {name: duplicate, time_intervals: [{}]}]\n",
            "mute time interval \"duplicate\" is not unique",
        ),
        (
            "route: {receiver: team-X, group_by: [alertname, cluster, cluster]}\n",
            "duplicated label \"cluster\" in group_by",
        ),
        (
            "route: {receiver: team-X, group_by: [alertname, cluster, '...']}\n",
            "cannot have wildcard group_by (`...`) and other other labels at the same time",
        ),
        (
            "route: {receiver: team-X, group_by: ['-invalid-']}\n",
            "invalid label name \"-invalid-\" in group_by list",
        ),
        (
            "route: {receiver: team-X, mute_time_intervals: [m]}\ntime_intervals: [{name: m, time_intervals: [{}]}]\n",
            "root route must not have any mute time intervals",
        ),
        (
            "route: {receiver: team-X, active_time_intervals: [m]}\ntime_intervals: [{name: m, time_intervals: [{}]}]\n",
            "root route must not have any active time intervals",
        ),
        (
            "route: {receiver: team-X, match: {a: b}}\n",
            "root route must not have any matchers",
        ),
        (
            "route: {receiver: team-X, matchers: ['a=b']}\n",
            "root route must not have any matchers",
        ),
        (
            "route: {receiver: team-X, continue: true}\n",
            "cannot have continue in root route",
        ),
        (
            "route: {receiver: team-X, group_interval: 0s}\n",
            "group_interval cannot be zero",
        ),
        (
            "route: {receiver: team-X, repeat_interval: 0s}\n",
            "repeat_interval cannot be zero",
        ),
        (
            "route: {receiver: team-X, routes: [{match_re: {invalid_label: }}]}\n",
            "invalid regexp value for \"invalid_label\"",
        ),
        (
            "route: {receiver: team-X}\ninhibit_rules: [{source_match_re: {invalid_source_label: }}]\n",
            "invalid regexp value for \"invalid_source_label\"",
        ),
        (
            "route: {receiver: team-X}\ninhibit_rules: [{target_match_re: {invalid_target_label: }}]\n",
            "invalid regexp value for \"invalid_target_label\"",
        ),
        (
            "route: {receiver: team-X, routes: [{matchers: ['a=\"b']}]}\n",
            "matcher value contains unescaped double quote: \"b",
        ),
    ] {
        let text = if text.contains("receivers") || text.is_empty() {
            text.to_owned()
        } else {
            format!("{text}{R}")
        };
        assert_eq!(err(&text), want, "{text}");
    }
}

#[test]
fn receivers_are_checked_and_defaulted_as_alertmanager_does() {
    let route = "route: {receiver: r}\n";
    for (recv, want) in [
        ("{name: r, webhook_configs: [{}]}", "missing URL in webhook config"),
        (
            "{name: r, webhook_configs: [{url: 'ftp://x'}]}",
            "unsupported scheme \"ftp\" for URL",
        ),
        (
            "{name: r, webhook_configs: [{url: 'http://x', http_config: {bearer_token: a, bearer_token_file: b}}]}",
            "at most one of bearer_token & bearer_token_file must be configured",
        ),
        (
            "{name: r, pagerduty_configs: [{}]}",
            "missing service or routing key in PagerDuty config",
        ),
        (
            "{name: r, slack_configs: [{}]}",
            "no global Slack API URL set either inline or in a file",
        ),
        (
            "{name: r, opsgenie_configs: [{}]}",
            "no global OpsGenie API Key set either inline or in a file",
        ),
        (
            "{name: r, slack_configs: [{api_url: 'http://s', fields: [{value: v}]}]}",
            "missing title in Slack field configuration",
        ),
        (
            "{name: r, slack_configs: [{api_url: 'http://s', actions: [{type: button, text: t}]}]}",
            "missing name or url in Slack action configuration",
        ),
        (
            "{name: r, opsgenie_configs: [{api_key: k, responders: [{type: wrong, name: n}]}]}",
            "opsGenieConfig responder { n  wrong} type does not match valid options ^(team|teams|user|escalation|schedule)$",
        ),
        (
            "{name: r, opsgenie_configs: [{api_key: k, responders: [{type: team}]}]}",
            "opsGenieConfig responder {   team} has to have at least one of id, username or name specified",
        ),
        (
            "{name: r, email_configs: [{to: a@b}]}",
            "receiver \"r\": email_configs are not supported by Sextant (it sends webhook_configs, pagerduty_configs, opsgenie_configs and slack_configs)",
        ),
    ] {
        let text = format!("{route}receivers: [{recv}]\n");
        assert_eq!(err(&text), want, "{text}");
    }
    for (global, want) in [
        (
            "{slack_api_url: 'http://a', slack_api_url_file: /f}",
            "at most one of slack_api_url & slack_api_url_file must be configured",
        ),
        (
            "{opsgenie_api_key: a, opsgenie_api_key_file: /f}",
            "at most one of opsgenie_api_key & opsgenie_api_key_file must be configured",
        ),
    ] {
        assert_eq!(
            err(&format!("global: {global}\n{route}receivers: [{{name: r}}]\n")),
            want
        );
    }
    // Defaults: PagerDuty's details and source, OpsGenie's key and URL from global,
    // responder types in any case.
    let c = load(
        "global: {opsgenie_api_key: qwe123, smtp_smarthost: 'localhost:25'}\nroute: {receiver: r}\nreceivers:\n- name: r\n  pagerduty_configs: [{routing_key: k, details: {key1: v}}]\n  opsgenie_configs: [{responders: [{type: scheDule, name: n}, {type: USER, id: i}, {type: '{{/* valid comment */}}team', id: j}]}, {api_key: qwe456}]\n",
    )
    .unwrap();
    let pd = &c.receivers[0].pagerduty_configs[0];
    assert_eq!(pd.details.len(), 5);
    assert_eq!(pd.source, pd.client);
    assert_eq!(pd.url.as_deref(), Some("https://events.pagerduty.com/v2/enqueue"));
    assert!(pd.send_resolved);
    let og = &c.receivers[0].opsgenie_configs;
    assert_eq!(og[0].api_key.as_ref().unwrap().0, "qwe123");
    assert_eq!(og[1].api_key.as_ref().unwrap().0, "qwe456");
    assert_eq!(og[0].api_url.as_deref(), Some("https://api.opsgenie.com/"));
    assert_eq!(c.global.resolve_timeout.0, std::time::Duration::from_secs(300));
}

#[test]
fn errors_name_file_and_line_and_unknown_keys_are_refused() {
    let e = load("route:\n  receiver: r\n  routes:\n    - receiver: missing\nreceivers: [{name: r}]\n").unwrap_err();
    assert_eq!(e, "am.yml:4:17: undefined receiver \"missing\" used in route");
    let e = load("route:\n  receiver: r\n  nope: 1\nreceivers: [{name: r}]\n").unwrap_err();
    assert!(e.starts_with("am.yml:3:") && e.contains("unknown field `nope`"), "{e}");
    let e = load("route: {receiver: r}\nreceivers: [{name: r, webhook_configs: [{url: 'http://x', url_file: /f}]}]\n")
        .unwrap_err();
    assert!(e.contains("unknown field `url_file`"), "{e}");
}

#[test]
fn the_alerting_section_of_sextant_config_inline_or_by_file() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("sextant.yml");
    let text = "scrape_configs: []\nalerting:\n  route:\n    receiver: r\n    routes: [{receiver: nope}]\n  receivers: [{name: r}]\n";
    let e = parse_section(text, &main).unwrap_err();
    assert!(e.starts_with(&format!("{}:5:", main.display())), "{e}");
    assert!(parse_section("scrape_configs: []\n", &main).unwrap().is_none());
    std::fs::write(
        dir.path().join("am.yml"),
        "route: {receiver: r}\nreceivers: [{name: r, webhook_configs: [{url: 'http://127.0.0.1:1/'}]}]\n",
    )
    .unwrap();
    let c = parse_section("alerting: {config_file: am.yml}\n", &main)
        .unwrap()
        .unwrap();
    assert_eq!(c.route.receiver, "r");
    let e = parse_section("alerting: {config_file: am.yml, receivers: [{name: x}]}\n", &main).unwrap_err();
    assert!(e.contains("config_file excludes an inline configuration"), "{e}");
}

#[test]
fn original_is_a_valid_configuration_with_secrets_hidden() {
    let c = load(
        "global: {slack_api_url: 'http://secret-slack'}\nroute: {receiver: r, group_by: [alertname], routes: [{match_re: {a: 'b.*'}, receiver: r, continue: true}]}\nreceivers:\n- name: r\n  slack_configs: [{channel: '#x'}]\n  pagerduty_configs: [{routing_key: mysecret}]\n",
    )
    .unwrap();
    let text = original(&c);
    assert!(!text.contains("mysecret") && !text.contains("secret-slack"), "{text}");
    assert!(text.contains("<secret>"));
    // It loads again.
    let again = load(&text).unwrap();
    assert_eq!(again.route.routes[0].key, c.route.routes[0].key);
}
