//! `covers`: where a grant's scope reaches, one row per case.

use super::{ORG, abs};
use crate::invitation_policy::covers;

/// `grant scope | Invitation's pattern | covers? | why`, one case a line. In both columns `~`
/// is the organization's CRN (`crn://confluent.cloud/organization=org-1`) and `$T` the path to
/// the topics of cluster lkc-1 (`environment=env-a/cloud-cluster=lkc-1/kafka=lkc-1/topic=`).
/// A text table, so that each case stays on one line.
const CASES: &str = "
environment=env-a           | ~/environment=env-a                   | yes | the same environment
environment=env-a           | ~/environment=env-a/cloud-cluster=lkc-1 | yes | a cluster below
environment=env-a           | ~/$Torders                            | yes | a topic below
environment=env-a           | ~/environment=env-ab                  | no  | a sibling with the name as prefix
environment=env-ab          | ~/environment=env-a                   | no  | the pattern's name is a prefix of the grant's
environment=env-a           | ~                                     | no  | an environment never covers the organization
environment=*               | ~                                     | no  | environment=* never covers the organization
organization=org-1          | ~                                     | yes | the organization, relative
~                           | ~                                     | yes | the organization, absolute
organization=org-1          | ~/environment=env-z                   | yes | the organization covers its environments
~/environment=env-a         | ~/$Tx                                 | yes | an absolute environment grant
$Tteam-a-*                  | ~/$Tteam-a-orders                     | yes | a topic prefix
$Tteam-a-*                  | ~/$Tteam-a-*                          | yes | a prefix covers the same prefix
$Tteam-a-*                  | ~/$Tteam-a-x*                         | yes | a prefix covers a longer prefix
$Tteam-a-*                  | ~/$Tteam-a-                           | yes | a prefix covers the bare prefix
$Tteam-a-*                  | ~/$Tteam-*                            | no  | a shorter, wider prefix
$Tteam-a-*                  | ~/$Tteam-b-orders                     | no  | another team's topic
$Torders                    | ~/$Torders                            | yes | a literal topic
$Torders                    | ~/$Torders*                           | no  | a `*` where the grant has none
$Torders                    | ~/$Torders-2                          | no  | a literal is not a prefix
$Ta*b                       | ~/$Ta*b                               | no  | a `*` inside a grant's value is no wildcard: the same `*` is not covered
environment=env-a           | ~/environment=env-*                   | no  | a wildcard environment in the pattern only
environment=*               | ~/environment=env-q/cloud-cluster=lkc-9 | yes | a wildcard environment in the grant
environment=env-a/cloud-cluster=lkc-* | ~/environment=env-a/cloud-cluster=lkc-1/kafka=lkc-1 | yes | a cluster prefix
environment=env-a           | ~/environment=env-a/cloud-cluster=*   | yes | a `*` below the grant's last segment
environment=env-a/cloud-cluster=lkc-1 | ~/environment=env-a         | no  | the grant is deeper than the pattern
environment=env-a/cloud-cluster=lkc-1 | ~/environment=env-a/schema-registry=lkc-1 | no | another key at the same depth
environment=env-a/cloud-cluster=lkc-1/kafka=lkc-1 | ~/environment=env-a/cloud-cluster=lkc-1/ksql=lkc-1 | no | kafka is not ksql
environment=ENV-A           | ~/environment=env-a                   | no  | values are compared exactly
crn://confluent.cloud/organization=org-2/environment=env-a | ~/environment=env-a | no | a grant in another organization
environment=env-a           | crn://confluent.cloud/organization=org-2/environment=env-a | no | a pattern in another organization
organization=*              | ~/environment=env-a                   | no  | organization=* is another organization
$Ta%3Ab                     | ~/$Ta:b                               | yes | an encoded grant value
$Ta%3A*                     | ~/$Ta:b                               | yes | an encoded grant prefix
$Ta%3A*                     | ~/$Tab                                | no  | an encoded prefix is still a prefix
crn%3A%2F%2Fconfluent.cloud%2Forganization%3Dorg-1%2Fenvironment%3Denv-a | ~/$Tx | yes | an encoded absolute grant
kafka=lkc-1                 | ~/$Tx                                 | no  | a relative scope not at an environment
environment=                | ~/environment=env-a                   | no  | an empty value
crn://other/organization=org-1 | ~                                  | no  | another scheme
environment=env-a           | environment=env-a                     | no  | a relative pattern is not resolved here
environment=env-a           | ~/environment=env-a/oops              | no  | a malformed pattern below the grant
";

/// A column with its abbreviations spelled out.
fn spelled(column: &str) -> String {
    abs(&column.replace(
        "$T",
        "environment=env-a/cloud-cluster=lkc-1/kafka=lkc-1/topic=",
    ))
}

#[test]
fn coverage_table() {
    let mut rows = 0;
    for line in CASES.lines().filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        let [grant, pattern, want, why] = cols[..] else {
            panic!("a row has four columns: {line}");
        };
        let (grant, pattern) = (spelled(grant), spelled(pattern));
        let want = match want {
            "yes" => true,
            "no" => false,
            other => panic!("covers? is yes or no, not {other}: {line}"),
        };
        assert_eq!(
            covers(&grant, &pattern, ORG),
            want,
            "{why}: {grant} over {pattern}"
        );
        rows += 1;
    }
    assert!(rows >= 30, "{rows} cases");
}

/// Blanks around a scope are the user's, not part of it.
#[test]
fn a_scope_is_trimmed() {
    assert!(covers(
        " environment=env-a ",
        &abs("~/environment=env-a/cloud-cluster=lkc-1"),
        ORG
    ));
}
