//! Typed ids: UUIDv7 newtypes so a session id can never be passed where a user id is expected.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

typed_id!(
    /// A user account.
    UserId
);
typed_id!(
    /// A login session (one device); access and refresh tokens belong to one.
    SessionId
);
typed_id!(
    /// A queued outgoing mail.
    MailId
);
typed_id!(
    /// An audit-log entry.
    AuditId
);
typed_id!(
    /// A direct or group conversation.
    ConversationId
);
typed_id!(
    /// A chat message.
    MessageId
);
typed_id!(
    /// An in-app notification.
    NotificationId
);
typed_id!(
    /// A background job of the notification worker.
    JobId
);
typed_id!(
    /// A file or folder of the drive.
    FileId
);
typed_id!(
    /// A share of a drive file or folder.
    ShareId
);
typed_id!(
    /// A public link to a drive file.
    LinkId
);
typed_id!(
    /// A voice or video call.
    CallId
);
typed_id!(
    /// A call planned for a later time.
    ScheduledCallId
);
typed_id!(
    /// A device's push subscription (Web Push, FCM or APNs), tied to one session.
    PushSubscriptionId
);
typed_id!(
    /// One push waiting in the delivery queue.
    PushDeliveryId
);

/// The built-in assistant's account: it posts `@assistant` replies and cannot sign in.
pub const ASSISTANT_USER_ID: UserId = UserId(uuid::Uuid::from_u128(
    0x0000_0000_0000_7000_8000_0000_0000_a551,
));
typed_id!(
    /// An MLS client: one per session.
    DeviceId
);
typed_id!(
    /// A stored MLS key package.
    KeyPackageId
);
typed_id!(
    /// A pending MLS Welcome for one device.
    WelcomeId
);
