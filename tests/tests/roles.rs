//! The role matrix (`orderflow::access`) as the handlers enforce it: every HTTP route of the
//! template, called by every role (as a staff member and as a machine token), by a customer, a
//! shop backend and nobody, answers as the matrix says; and the README prints that same matrix.

use orderflow::access::{markdown_table, rule_for, Audience, RouteRule, ALL_ROLES, ROUTES};
use orderflow_tests::auth::VerifiedClaims;
use orderflow_tests::fixtures::{claims, customer, exchange, json_request, shop};
use orderflow_tests::local::{LocalFunction, OutsideParties};
use orderflow_tests::template::{Functions, Trigger};
use orderflow_tests::Stack;
use std::collections::BTreeSet;

const README_START: &str = "<!-- role-matrix:start -->";
const README_END: &str = "<!-- role-matrix:end -->";

#[test]
fn the_readme_prints_the_role_matrix_the_handlers_enforce() {
    let path = orderflow_tests::emulators::repo_root().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme.find(README_START).expect("README marks where the matrix starts") + README_START.len();
    let end = readme.find(README_END).expect("README marks where the matrix ends");
    let expected = format!("\n{}\n", markdown_table());
    if std::env::var_os("UPDATE_README").is_some() {
        std::fs::write(&path, format!("{}{expected}{}", &readme[..start], &readme[end..])).unwrap();
        return;
    }
    assert_eq!(&readme[start..end], expected, "run with UPDATE_README=1 to print the matrix into the README");
}

#[test]
fn the_matrix_has_every_route_of_the_template_and_no_other() {
    let mut in_template = BTreeSet::new();
    for function in Functions::from_repo().unwrap().functions {
        for trigger in &function.triggers {
            if let Trigger::Http { method, path, public } = trigger {
                let rule = rule_for(method, path).unwrap_or_else(|| panic!("{method} {path} is not in the matrix"));
                assert_eq!((rule.path, rule.function), (path.as_str(), function.binary.as_str()), "{method} {path}");
                assert_eq!(*public, rule.audience == Audience::Signed, "{method} {path}: public exactly when signed");
                in_template.insert((method.clone(), path.clone()));
            }
        }
    }
    let in_matrix: BTreeSet<_> = ROUTES.iter().map(|r| (r.method.to_owned(), r.path.to_owned())).collect();
    assert_eq!(in_matrix, in_template);
}

/// Who calls, and whether the matrix lets them through.
struct Caller {
    name: String,
    claims: Option<VerifiedClaims>,
    allowed: fn(&RouteRule, Option<orderflow::auth::Role>) -> bool,
    role: Option<orderflow::auth::Role>,
}

fn callers() -> Vec<Caller> {
    let owner = |rule: &RouteRule, _| matches!(rule.audience, Audience::Owner | Audience::OwnerOrStaff(_));
    let by_role = |rule: &RouteRule, role: Option<_>| role.is_some_and(|r| rule.allows_role(r));
    let mut callers = vec![
        Caller { name: "customer".into(), claims: Some(customer("cust-roles")), allowed: owner, role: None },
        Caller { name: "shop".into(), claims: Some(shop()), allowed: owner, role: None },
    ];
    for role in ALL_ROLES {
        let groups = format!("[{}]", role.name());
        let staff = claims(&[("sub", "staff-roles"), ("groups", &groups)]);
        let scope = format!("orderflow/{}", role.name());
        let machine = claims(&[("sub", "tool"), ("client_id", "tool"), ("scope", &scope), ("token_use", "access")]);
        callers.push(Caller {
            name: format!("staff {}", role.name()),
            claims: Some(staff),
            allowed: by_role,
            role: Some(role),
        });
        callers.push(Caller {
            name: format!("machine {scope}"),
            claims: Some(machine),
            allowed: by_role,
            role: Some(role),
        });
    }
    callers
}

/// `{name}` parameters filled with values the handlers parse or look up.
fn concrete(path: &str) -> String {
    path.replace("{sku}", "TEA").replace("{warehouse}", "HZ").replace("{courier}", "express").replace("{id}", "x1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_caller_as_the_matrix_says() {
    let (stack, _clock) = Stack::for_test().await;
    let outside = OutsideParties { courier: stack.courier.clone(), provider: stack.provider.clone() };
    let callers = callers();
    let mut checked = 0;
    for rule in ROUTES {
        let function = LocalFunction::for_binary(&stack, rule.function, &outside).unwrap();
        let path = concrete(rule.path);
        let call = |claims: Option<VerifiedClaims>| {
            let function = function.clone();
            let request = json_request(claims, rule.method, &path, rule.path, None);
            async move { exchange(request, |r| function.http(r)).await }
        };
        let (status, problem) = call(None).await;
        assert_eq!(status, 401, "{} {} without a token: {problem}", rule.method, rule.path);
        for caller in &callers {
            let (status, problem) = call(caller.claims.clone()).await;
            let code = problem["code"].as_str().unwrap_or_default().to_owned();
            let what = format!("{} {} by {}: {status} {problem}", rule.method, rule.path, caller.name);
            if rule.audience == Audience::Signed {
                assert_eq!(status, 401, "a signed route takes a signature, never a token: {what}");
            } else if (caller.allowed)(rule, caller.role) {
                let answered = status < 500 && ![401, 403, 405].contains(&status) && code != "route-not-found";
                assert!(answered, "allowed, yet {what}");
            } else {
                assert_eq!((status, code.as_str()), (403, "forbidden"), "{what}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, ROUTES.len() * callers.len());
}
