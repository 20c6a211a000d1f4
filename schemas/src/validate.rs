//! Helpers shared by [`Event::validate`](crate::Event::validate) and
//! [`Action::validate`](crate::Action::validate).

use crate::error::Error;

/// Builds [`Error::Invalid`] for one event or action.
pub(crate) struct Check<'a> {
    what: &'static str,
    id: &'a str,
}

impl<'a> Check<'a> {
    pub(crate) fn new(what: &'static str, id: &'a str) -> Self {
        Check { what, id }
    }

    /// The error for `field`.
    pub(crate) fn fail(&self, field: &'static str, reason: impl Into<String>) -> Error {
        Error::Invalid {
            what: self.what,
            id: self.id.to_owned(),
            field,
            reason: reason.into(),
        }
    }

    /// The rules every event and action share: ids are present, the tenant can be split
    /// off the Kafka key `tenant/contact_id`, the chain depth is not negative.
    pub(crate) fn envelope(
        &self,
        id: &str,
        tenant: &str,
        contact_id: &str,
        chain_depth: i32,
    ) -> Result<(), Error> {
        if id.is_empty() {
            return Err(self.fail("id", "must not be empty"));
        }
        if tenant.is_empty() {
            return Err(self.fail("tenant", "must not be empty"));
        }
        if tenant.contains('/') {
            return Err(self.fail(
                "tenant",
                format!("{tenant:?} contains '/', which separates tenant and contact in the key"),
            ));
        }
        if contact_id.is_empty() {
            return Err(self.fail("contact_id", "must not be empty"));
        }
        if chain_depth < 0 {
            return Err(self.fail(
                "chain_depth",
                format!("must not be negative, found {chain_depth}"),
            ));
        }
        Ok(())
    }
}
