//! Decision tables of the InvitationPolicy kind, a file per concern: [`coverage`] (where a
//! grant reaches).

mod coverage;

const ORG: &str = "org-1";

/// A pattern as an Invitation's item resolves to: `~` stands for the organization's CRN.
fn abs(pattern: &str) -> String {
    pattern.replace('~', "crn://confluent.cloud/organization=org-1")
}
