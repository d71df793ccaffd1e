//! The API's routes: each path template and the methods it serves. The fallback function answers
//! 405 (with `Allow`) or 404 from this table, the log line names the matched template, and a test
//! keeps the table, `openapi.yaml`, `template.yaml` and the local router in agreement.

use crate::error::ApiError;

/// One path template and the methods it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The path template, e.g. `/v1/conversations/{id}`.
    pub path: &'static str,
    /// The methods, e.g. `["GET", "PATCH", "DELETE"]`.
    pub methods: &'static [&'static str],
}

/// Every route of the API.
pub const ROUTES: [Route; 9] = [
    Route {
        path: "/v1/conversations",
        methods: &["GET", "POST"],
    },
    Route {
        path: "/v1/conversations/{id}",
        methods: &["GET", "PATCH", "DELETE"],
    },
    Route {
        path: "/v1/conversations/{id}/undelete",
        methods: &["POST"],
    },
    Route {
        path: "/v1/conversations/{id}/complete",
        methods: &["POST"],
    },
    Route {
        path: "/v1/conversations/{id}/purge",
        methods: &["POST"],
    },
    Route {
        path: "/v1/conversations/{id}/messages",
        methods: &["GET", "POST"],
    },
    // Before `{order}`: a literal segment wins over a parameter, as in API Gateway's routing.
    Route {
        path: "/v1/conversations/{id}/messages/batch",
        methods: &["POST"],
    },
    Route {
        path: "/v1/conversations/{id}/messages/clear",
        methods: &["POST"],
    },
    Route {
        path: "/v1/conversations/{id}/messages/{order}",
        methods: &["GET", "PATCH", "DELETE"],
    },
];

/// The route whose template matches `path` (a `{…}` segment matches any one non-empty segment).
pub fn find(path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|route| matches(route.path, path))
}

/// The error for a request that no function serves: 405 with the methods the path serves, or 404
/// for a path that is not the API's.
pub fn unserved(method: &str, path: &str) -> ApiError {
    match find(path) {
        Some(route) => ApiError::MethodNotAllowed {
            method: crate::domain::ids::shorten(method),
            path: route.path.to_owned(),
            allow: route.methods,
        },
        None => ApiError::NotFound(format!("path {:?}", crate::domain::ids::shorten(path))),
    }
}

fn matches(template: &str, path: &str) -> bool {
    let mut want = template.split('/');
    let mut have = path.split('/');
    loop {
        match (want.next(), have.next()) {
            (None, None) => return true,
            (Some(w), Some(h)) if w.starts_with('{') && !h.is_empty() => {}
            (Some(w), Some(h)) if w == h => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_their_template_and_nothing_else() {
        let path = |p| find(p).map(|r| r.path);
        assert_eq!(path("/v1/conversations"), Some("/v1/conversations"));
        assert_eq!(
            path("/v1/conversations/a-1"),
            Some("/v1/conversations/{id}")
        );
        assert_eq!(
            path("/v1/conversations/x/messages"),
            Some("/v1/conversations/{id}/messages")
        );
        assert_eq!(
            path("/v1/conversations/x/complete"),
            Some("/v1/conversations/{id}/complete")
        );
        assert_eq!(
            path("/v1/conversations/x/messages/12"),
            Some("/v1/conversations/{id}/messages/{order}")
        );
        assert_eq!(
            path("/v1/conversations/x/messages/batch"),
            Some("/v1/conversations/{id}/messages/batch")
        );
        assert_eq!(
            path("/v1/conversations/x/messages/clear"),
            Some("/v1/conversations/{id}/messages/clear")
        );
        assert_eq!(
            path("/v1/conversations/x/purge"),
            Some("/v1/conversations/{id}/purge")
        );
        for unknown in [
            "/",
            "",
            "/v1",
            "/v1/conversations/",
            "/v1/conversations//messages",
            "/v1/conversations/x/y",
            "/v1/conversations/x/messages/1/x",
            "/v1/conversations/x/messages/",
            "/v2/conversations",
            "/v1/Conversations",
        ] {
            assert_eq!(path(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn an_unserved_method_is_405_with_allow_and_an_unknown_path_404() {
        let e = unserved("PUT", "/v1/conversations/abc");
        assert_eq!(e.status(), 405);
        assert_eq!(e.allow().as_deref(), Some("GET, PATCH, DELETE"));
        assert_eq!(
            e.to_string(),
            "/v1/conversations/{id} does not serve PUT; it serves GET, PATCH, DELETE"
        );
        let e = unserved("GET", "/v1/nope");
        assert_eq!(e.status(), 404);
        assert_eq!(e.allow(), None);
        assert_eq!(e.to_string(), "path \"/v1/nope\" was not found");
    }
}
