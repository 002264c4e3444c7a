//! The OpenAPI 3.1 document, generated from the handlers' annotations at run time.

use crate::{dto::*, routes};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

#[derive(OpenApi)]
#[openapi(
    info(title = "SecureConnect API", version = "1", description = "Every JSON response uses the envelope {success, data|error, meta}; see API.md."),
    paths(
        routes::auth::register, routes::auth::login, routes::auth::refresh, routes::auth::logout,
        routes::auth::logout_all, routes::auth::sessions, routes::auth::end_session,
        routes::auth::reset_request, routes::auth::reset_confirm, routes::auth::verify_email,
        routes::auth::resend_verification, routes::auth::totp_setup, routes::auth::totp_enable,
        routes::auth::totp_disable,
        routes::users::me, routes::users::patch_me, routes::users::change_password, routes::users::delete_me,
        routes::users::profile, routes::users::search, routes::users::block, routes::users::unblock,
        routes::users::blocked,
        routes::chat::create, routes::chat::list, routes::chat::get, routes::chat::patch, routes::chat::delete,
        routes::chat::members, routes::chat::add_members, routes::chat::remove_member, routes::chat::set_role,
        routes::chat::send, routes::chat::history, routes::chat::edit, routes::chat::delete_message,
        routes::chat::react, routes::chat::unreact, routes::chat::read, routes::chat::receipts, routes::chat::search,
        routes::realtime::ticket, routes::realtime::set_presence, routes::realtime::get_presence,
        routes::realtime::notifications,
    ),
    components(schemas(UserView, TokenPairView, SessionView, ProfileView, Empty)),
    modifiers(&BearerAuth),
    tags((name = "auth"), (name = "users"), (name = "chat"), (name = "realtime"), (name = "notifications"))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
