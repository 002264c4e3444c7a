//! The OpenAPI 3.1 document, generated from the handlers' annotations once per process.
//!
//! Handlers describe their payloads and the statuses particular to them; `finish` then applies
//! what holds for every route, so no annotation can forget it: each payload is wrapped in the
//! success envelope, each error status gets the error envelope with the codes it can carry, the
//! statuses every route can answer are added (400, 401 on protected routes, 413/415 with a body,
//! 429 on rate-limited routes, 500, 503), operation ids are `<tag>_<handler>` (unique), and the
//! bearer requirement is set on every route outside the public list.

use crate::{dto::*, routes};
use serde_json::{Value, json};
use std::sync::LazyLock;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "SecureConnect API", version = "1", description = "Every JSON response uses the envelope {success, data|error, meta}; see API.md. Lists answer {items, next_cursor} and take limit (1-100, default 20) and cursor."),
    paths(
        routes::ops::health, routes::ops::ready, routes::ops::metrics, routes::ops::openapi,
        routes::auth::register, routes::auth::login, routes::auth::refresh, routes::auth::logout,
        routes::auth::logout_all, routes::auth::sessions, routes::auth::end_session,
        routes::auth::reset_request, routes::auth::reset_confirm, routes::auth::verify_email,
        routes::auth::resend_verification, routes::auth::totp_setup, routes::auth::totp_enable,
        routes::auth::totp_disable,
        routes::browser::register, routes::browser::login, routes::browser::refresh,
        routes::browser::logout,
        routes::users::me, routes::users::patch_me, routes::users::change_password, routes::users::delete_me,
        routes::users::profile, routes::users::search, routes::users::block, routes::users::unblock,
        routes::users::blocked,
        routes::chat::create, routes::chat::list, routes::chat::get, routes::chat::patch, routes::chat::delete,
        routes::chat::members, routes::chat::add_members, routes::chat::remove_member, routes::chat::set_role,
        routes::chat::send, routes::chat::history, routes::chat::edit, routes::chat::delete_message,
        routes::chat::react, routes::chat::unreact, routes::chat::read, routes::chat::receipts, routes::chat::search,
        routes::realtime::ticket, routes::realtime::upgrade, routes::realtime::set_presence, routes::realtime::get_presence,
        routes::notifications::list, routes::notifications::read, routes::notifications::read_all,
        routes::notifications::preferences, routes::notifications::patch_preferences,
        routes::notifications::subscribe, routes::notifications::subscriptions,
        routes::notifications::unsubscribe, routes::notifications::vapid_public_key,
        routes::chat::mute, routes::chat::unmute,
        routes::ai::settings, routes::ai::patch_settings, routes::ai::chat, routes::ai::summary,
        routes::ai::image,
        routes::drive::init_upload, routes::drive::complete, routes::drive::list, routes::drive::get,
        routes::drive::patch, routes::drive::delete, routes::drive::download, routes::drive::create_folder,
        routes::drive::quota, routes::drive::init_version, routes::drive::versions, routes::drive::restore,
        routes::drive::share, routes::drive::shares, routes::drive::unshare, routes::drive::shared_with_me,
        routes::links::create_link, routes::links::links, routes::links::revoke_link, routes::links::link_info,
        routes::links::link_download,
        routes::polls::vote, routes::polls::withdraw, routes::polls::voters, routes::polls::close,
        routes::calls::create, routes::calls::list, routes::calls::ice_servers, routes::calls::get,
        routes::calls::join, routes::calls::leave, routes::calls::decline, routes::calls::end,
        routes::calls::media, routes::calls::recording, routes::calls::attach_recording,
        routes::calls::add_quality, routes::calls::quality,
        routes::calls::schedule, routes::calls::scheduled, routes::calls::get_scheduled,
        routes::calls::patch_scheduled, routes::calls::cancel_scheduled,
        routes::blobs::put_blob, routes::blobs::get_blob,
        routes::admin::stats, routes::admin::users, routes::admin::user, routes::admin::update_user,
        routes::admin::ban, routes::admin::unban, routes::admin::audit_log,
        routes::mls::put_device, routes::mls::devices, routes::mls::upload_packages,
        routes::mls::package_count, routes::mls::claim, routes::mls::commit, routes::mls::commits,
        routes::mls::group_info, routes::mls::welcomes, routes::mls::ack_welcome,
    ),
    components(schemas(UserView, TokenPairView, SessionView, ProfileView, Empty)),
    tags((name = "ops"), (name = "auth"), (name = "users"), (name = "chat"), (name = "realtime"), (name = "notifications"), (name = "drive"), (name = "calls"), (name = "ai"), (name = "blobs"), (name = "admin"), (name = "mls"))
)]
struct ApiDoc;

/// The served document (built once: it only depends on the code).
pub static DOCUMENT: LazyLock<Vec<u8>> =
    LazyLock::new(|| serde_json::to_vec(&document()).expect("the OpenAPI document serializes"));

pub fn document() -> Value {
    let raw = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    finish(raw)
}

/// Routes answered without the envelope (API.md §12).
const RAW_ROUTES: [&str; 4] = ["/health", "/ready", "/metrics", "/v1/openapi.json"];

/// The error codes each status carries (API.md §1).
const ERROR_CODES: [(&str, &[&str]); 14] = [
    ("400", &["VALIDATION_ERROR"]),
    ("401", &["UNAUTHORIZED", "TOTP_REQUIRED"]),
    ("403", &["FORBIDDEN", "EMAIL_NOT_VERIFIED"]),
    ("404", &["NOT_FOUND"]),
    ("405", &["METHOD_NOT_ALLOWED"]),
    ("409", &["CONFLICT", "LIMIT_REACHED"]),
    ("413", &["PAYLOAD_TOO_LARGE"]),
    ("415", &["UNSUPPORTED_MEDIA_TYPE"]),
    ("416", &["VALIDATION_ERROR"]),
    ("423", &["ACCOUNT_LOCKED"]),
    ("429", &["RATE_LIMITED"]),
    ("500", &["INTERNAL_ERROR"]),
    ("503", &["SERVICE_UNAVAILABLE"]),
    ("507", &["QUOTA_EXCEEDED"]),
];

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn finish(mut doc: Value) -> Value {
    let components = doc["components"]
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut components = Value::Object(components);
    add_envelope_schemas(&mut components);
    components["securitySchemes"] = json!({
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    });
    doc["components"] = components;

    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            for method in METHODS {
                if let Some(op) = item.get_mut(method) {
                    finish_operation(path, op);
                }
            }
        }
    }
    doc
}

fn add_envelope_schemas(components: &mut Value) {
    let schemas = components
        .as_object_mut()
        .map(|c| c.entry("schemas").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut);
    let Some(schemas) = schemas else { return };
    schemas.insert(
        "Meta".into(),
        json!({
            "type": "object",
            "required": ["request_id", "timestamp"],
            "properties": {
                "request_id": {"type": "string"},
                "timestamp": {"type": "string", "format": "date-time"}
            }
        }),
    );
    for (status, codes) in ERROR_CODES {
        schemas.insert(
            format!("Error{status}"),
            json!({
                "type": "object",
                "required": ["success", "error", "meta"],
                "properties": {
                    "success": {"const": false},
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string", "enum": codes},
                            "message": {"type": "string"},
                            "details": {"type": "object"}
                        }
                    },
                    "meta": {"$ref": "#/components/schemas/Meta"}
                }
            }),
        );
    }
}

fn is_public(path: &str) -> bool {
    RAW_ROUTES.contains(&path) || crate::is_public_path(path)
}

fn finish_operation(path: &str, op: &mut Value) {
    let tag = op["tags"][0].as_str().unwrap_or("api").to_string();
    if let Some(id) = op["operationId"].as_str() {
        op["operationId"] = json!(format!("{tag}_{id}"));
    }
    if is_public(path) {
        if let Some(o) = op.as_object_mut() {
            o.remove("security");
        }
    } else {
        op["security"] = json!([{"bearer": []}]);
    }
    if RAW_ROUTES.contains(&path) {
        return;
    }
    if returns_page(op) {
        add_list_parameters(op);
    }
    let has_body = op.get("requestBody").is_some();
    // Every enveloped route counts against the per-IP limit (`api_rate_per_ip_per_minute`).
    let mut statuses = vec!["400", "429", "500", "503"];
    if !is_public(path) {
        // Protected routes also share the per-user request limit of `require_auth`.
        statuses.push("401");
    }
    if has_body {
        statuses.extend(["413", "415"]);
    }
    if tag == "chat" || tag == "mls" {
        // Messaging needs a verified email when the server requires one (EMAIL_NOT_VERIFIED).
        statuses.push("403");
    }
    let responses = op
        .as_object_mut()
        .map(|o| o.entry("responses").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut);
    let Some(responses) = responses else { return };
    for s in statuses {
        responses.entry(s).or_insert_with(|| json!({}));
    }
    for (status, response) in responses.iter_mut() {
        envelope_response(status, response);
    }
}

/// Whether the operation answers a `Page` (`{items, next_cursor}`).
fn returns_page(op: &Value) -> bool {
    op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .is_some_and(|r| r.starts_with("#/components/schemas/Page_"))
}

/// `limit` and `cursor` as every list takes them (API.md §1 and §12), defined once here.
fn add_list_parameters(op: &mut Value) {
    let params = op
        .as_object_mut()
        .map(|o| o.entry("parameters").or_insert_with(|| json!([])))
        .and_then(Value::as_array_mut);
    let Some(params) = params else { return };
    params.retain(|p| p["in"] != "query" || (p["name"] != "limit" && p["name"] != "cursor"));
    params.push(json!({
        "name": "limit", "in": "query", "required": false,
        "description": "page size (default 20)",
        "schema": {"type": "integer", "minimum": 1, "maximum": crate::extract::ListQuery::MAX_LIMIT}
    }));
    params.push(json!({
        "name": "cursor", "in": "query", "required": false,
        "description": "the next_cursor of the previous page (opaque)",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}
    }));
}

/// Wraps a success payload in `{success: true, data, meta}`; gives an error status its
/// error envelope and a description naming its codes.
fn envelope_response(status: &str, response: &mut Value) {
    let Some(r) = response.as_object_mut() else {
        return;
    };
    if status.starts_with('1') {
        return;
    }
    if status.starts_with('2') {
        // Bytes (a download) are not enveloped.
        let content = r.get("content").and_then(Value::as_object);
        if content.is_some_and(|c| !c.is_empty() && !c.contains_key("application/json")) {
            return;
        }
        let data = r
            .get("content")
            .and_then(|c| c.get("application/json"))
            .and_then(|c| c.get("schema"))
            .cloned()
            .unwrap_or_else(|| json!({"type": "object"}));
        // Other forms of the same answer (an event stream) stay as they are.
        let mut content = r
            .get("content")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        content.insert(
            "application/json".into(),
            json!({"schema": {
                "type": "object",
                "required": ["success", "data", "meta"],
                "properties": {
                    "success": {"const": true},
                    "data": data,
                    "meta": {"$ref": "#/components/schemas/Meta"}
                }
            }}),
        );
        r.insert("content".into(), Value::Object(content));
        r.entry("description").or_insert_with(|| json!("success"));
        return;
    }
    let codes = ERROR_CODES
        .iter()
        .find(|(s, _)| *s == status)
        .map(|(_, c)| c.join(", "))
        .unwrap_or_default();
    let schema = if codes.is_empty() {
        json!({"type": "object"})
    } else {
        json!({"$ref": format!("#/components/schemas/Error{status}")})
    };
    r.insert(
        "content".into(),
        json!({"application/json": {"schema": schema}}),
    );
    let described = r
        .get("description")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
        .map(|d| format!("{codes}: {d}"))
        .unwrap_or(codes);
    r.insert("description".into(), Value::String(described));
}
