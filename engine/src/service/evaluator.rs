//! Evaluates each contact's inputs with its tenant's flows from the catalog.

use std::sync::Arc;

use sluice_infra::store::ContactKey;

use crate::{
    catalog::FlowCatalog,
    eval::{self, ContactState, FlowSet, Input, Output},
    runtime::Evaluator,
};

/// An [`Evaluator`] that takes the tenant's current flows from a [`FlowCatalog`]
/// for every input (an atomic snapshot, so a new version applies to the next input).
pub struct CatalogEvaluator {
    catalog: Arc<FlowCatalog>,
    none: FlowSet,
}

impl std::fmt::Debug for CatalogEvaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogEvaluator").finish_non_exhaustive()
    }
}

impl CatalogEvaluator {
    /// Evaluates with `catalog`'s flows.
    pub fn new(catalog: Arc<FlowCatalog>) -> Self {
        CatalogEvaluator {
            catalog,
            none: FlowSet::new(),
        }
    }

    fn run(&self, tenant: &str, state: &mut ContactState, input: Input<'_>, now: i64) -> Output {
        match self.catalog.flows(tenant) {
            Some(flows) => eval::evaluate(&flows, state, input, now),
            None => eval::evaluate(&self.none, state, input, now),
        }
    }
}

impl Evaluator for CatalogEvaluator {
    fn evaluate(&self, state: &mut ContactState, input: Input<'_>, now: i64) -> Output {
        let tenant = match input {
            Input::Event(event) => event.tenant.clone(),
            Input::Timer(_) => String::new(),
        };
        self.run(&tenant, state, input, now)
    }

    fn evaluate_for(
        &self,
        contact: &ContactKey,
        state: &mut ContactState,
        input: Input<'_>,
        now: i64,
    ) -> Output {
        self.run(&contact.tenant, state, input, now)
    }
}
