//! Notification preferences: per-kind push and email switches and the digest switch.

use super::{NotifyService, SETTABLE_KINDS};
use crate::AuthContext;
use sc_core::{AppError, AppResult};
use sc_db::notification_prefs::KindChange;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct KindSwitches {
    pub push: bool,
    pub email: bool,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PreferencesView {
    /// Every settable kind with its switches (`message`, `mention`, `call.missed`,
    /// `file.shared`, `call.scheduled`); `security` is always on and not listed.
    pub kinds: BTreeMap<String, KindSwitches>,
    pub email_digest: bool,
}

/// A validated PATCH: every kind known and settable.
#[derive(Debug)]
pub struct PreferencesPatch {
    kinds: Vec<(&'static str, Option<bool>, Option<bool>)>,
    email_digest: Option<bool>,
}

impl PreferencesPatch {
    /// From `(kind, push, email)` changes; an unknown kind, or `security`, is a 400 naming it.
    pub fn new(
        kinds: impl IntoIterator<Item = (String, Option<bool>, Option<bool>)>,
        email_digest: Option<bool>,
    ) -> AppResult<Self> {
        let mut out = Vec::new();
        for (kind, push, email) in kinds {
            let Some(known) = SETTABLE_KINDS.iter().find(|k| **k == kind.as_str()) else {
                let why = if kind == "security" {
                    "security notifications cannot be turned off"
                } else {
                    "unknown notification kind"
                };
                return Err(AppError::validation(format!("kinds.{kind}"), why));
            };
            out.push((*known, push, email));
        }
        Ok(Self {
            kinds: out,
            email_digest,
        })
    }
}

impl NotifyService {
    pub async fn preferences(&self, ctx: &AuthContext) -> AppResult<PreferencesView> {
        let (stored, email_digest) = self.d.db.notification_prefs().get(ctx.user_id).await?;
        let mut kinds: BTreeMap<String, KindSwitches> = SETTABLE_KINDS
            .iter()
            .map(|k| {
                (
                    k.to_string(),
                    KindSwitches {
                        push: true,
                        email: true,
                    },
                )
            })
            .collect();
        for s in stored {
            if let Some(k) = kinds.get_mut(&s.kind) {
                *k = KindSwitches {
                    push: s.push,
                    email: s.email,
                };
            }
        }
        Ok(PreferencesView {
            kinds,
            email_digest,
        })
    }

    pub async fn update_preferences(
        &self,
        ctx: &AuthContext,
        patch: PreferencesPatch,
    ) -> AppResult<PreferencesView> {
        let changes: Vec<KindChange<'_>> = patch
            .kinds
            .iter()
            .map(|(kind, push, email)| KindChange {
                kind,
                push: *push,
                email: *email,
            })
            .collect();
        self.d
            .db
            .notification_prefs()
            .update(ctx.user_id, &changes, patch.email_digest)
            .await?;
        self.preferences(ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_refuses_unknown_kinds_and_security() {
        for bad in ["nope", "security", ""] {
            let r = PreferencesPatch::new([(bad.to_string(), Some(false), None)], None);
            assert!(r.is_err(), "{bad}");
        }
        let ok = PreferencesPatch::new([("mention".to_string(), None, Some(false))], Some(false));
        let ok = ok.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok.kinds, vec![("mention", None, Some(false))]);
        assert_eq!(ok.email_digest, Some(false));
    }
}
