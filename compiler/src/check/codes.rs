//! Every diagnostic code the front end emits, in one place. Codes are stable: tools and
//! fixtures depend on them. A code names one kind of problem; the message says the details.
//!
//! | code | severity | meaning |
//! | --- | --- | --- |
//! | P0001 | error | YAML syntax error |
//! | P0002 | error | YAML too deep or alias expansion too large |
//! | P0003 | error | bad alias or merge key |
//! | P0010 | note | document of a kind that is not a policy, skipped |
//! | P0011 | error | policy kind at an API version Kyverno does not serve |
//! | P0012 | error | duplicate key in a map |
//! | P0013 | error | policy without `metadata.name` |
//! | P0101 | error | unknown field |
//! | P0102 | error | value of the wrong type |
//! | P0103 | error | missing required field |
//! | P0104 | error | value not among the allowed ones |
//! | P0105 | error | mutually exclusive fields set together |
//! | P0106 | warning | deprecated field |
//! | P0107 | error | value out of range or malformed |
//! | P0201 | error | rule with no rule type (validate, mutate, generate, verifyImages) |
//! | P0202 | error | duplicate rule name |
//! | P0203 | error | rule name longer than 63 characters |
//! | P0204 | error | `match` or `exclude` without any filter |
//! | P0205 | error | validate rule with nothing to check |
//! | P0206 | error | `admission` and `background` both false |
//! | P0207 | error | user-info variable in a policy that runs in the background |
//! | P0208 | error | variable where Kyverno does not substitute variables |
//! | P0209 | warning | `mutateDigest` not false where the failure action is Audit (Kyverno's webhook refuses it) |
//! | P0210 | error | field only allowed on a ClusterPolicy used in a namespaced Policy |
//! | P0211 | error | `celPreconditions` or `context` used with the wrong rule type |
//! | P0212 | error | `mutateExistingOnPolicyUpdate` without `targets` |
//! | P0213 | error | mutate rule with nothing to patch |
//! | P0214 | error | generate rule without its target (`kind`/`name`) or source |
//! | P0301 | error | unknown condition operator |
//! | P0302 | warning | deprecated condition operator |
//! | P0601 | error | JMESPath syntax error |
//! | P0602 | error | unknown JMESPath function |
//! | P0603 | error | JMESPath function called with the wrong number of arguments |
//! | P0604 | error | `{{` without a matching `}}` |
//! | P0611 | error | CEL syntax error |
//! | P0612 | error | unknown CEL function |
//! | P0613 | warning | CEL expression whose estimated cost is far beyond Kubernetes' limit |
//! | P0614 | warning | CEL expression reads a field the matched kinds do not have |
//!
//! The pattern module's own codes (P05xx, anchors and operator expressions) are listed in
//! `pattern::codes`.

pub use crate::syntax::codes::{ALIAS, LIMIT, SYNTAX};

pub const NOT_A_POLICY: &str = "P0010";
pub const UNSERVED_VERSION: &str = "P0011";
pub const DUPLICATE_KEY: &str = "P0012";
pub const MISSING_NAME: &str = "P0013";

pub const UNKNOWN_FIELD: &str = "P0101";
pub const WRONG_TYPE: &str = "P0102";
pub const MISSING_FIELD: &str = "P0103";
pub const BAD_ENUM: &str = "P0104";
pub const EXCLUSIVE: &str = "P0105";
pub const DEPRECATED_FIELD: &str = "P0106";
pub const BAD_VALUE: &str = "P0107";

pub const NO_RULE_TYPE: &str = "P0201";
pub const DUPLICATE_RULE: &str = "P0202";
pub const RULE_NAME_TOO_LONG: &str = "P0203";
pub const EMPTY_MATCH: &str = "P0204";
pub const EMPTY_VALIDATE: &str = "P0205";
pub const NOWHERE_TO_RUN: &str = "P0206";
pub const USER_INFO_IN_BACKGROUND: &str = "P0207";
pub const VARIABLE_NOT_ALLOWED: &str = "P0208";
pub const MUTATE_DIGEST_AUDIT: &str = "P0209";
pub const CLUSTER_ONLY: &str = "P0210";
pub const WRONG_RULE_TYPE: &str = "P0211";
pub const EXISTING_WITHOUT_TARGETS: &str = "P0212";
pub const EMPTY_MUTATE: &str = "P0213";
pub const INCOMPLETE_GENERATE: &str = "P0214";

pub const UNKNOWN_OPERATOR: &str = "P0301";
pub const DEPRECATED_OPERATOR: &str = "P0302";

pub const JMESPATH_SYNTAX: &str = "P0601";
pub const UNKNOWN_FUNCTION: &str = "P0602";
pub const WRONG_ARITY: &str = "P0603";
pub const UNCLOSED_TEMPLATE: &str = "P0604";
pub const CEL_SYNTAX: &str = "P0611";
pub const CEL_UNKNOWN_FUNCTION: &str = "P0612";
pub const CEL_COST: &str = "P0613";
pub const CEL_UNKNOWN_FIELD: &str = "P0614";
