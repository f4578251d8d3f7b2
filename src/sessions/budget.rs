//! The sessions' side of the budgets: what each session and all of them spent, what
//! running turns hold, and the reservation a turn takes as it starts ([`SessionBook`]),
//! all read under the slots' lock so parallel turns never hold more than is left.

use std::collections::BTreeMap;

use super::{Shared, Slot, slot_totals};
use crate::config::Config;
use crate::supervisor::{
    AskError, Budget, BudgetBook, BudgetScope, MIN_BUDGET_USD, Reservation, turn_cap,
};
use crate::sync::lock;

/// The reservations of running turns: each turn's session and the most it may spend.
#[derive(Default)]
pub(super) struct Held {
    pub(super) next: u64,
    pub(super) turns: BTreeMap<u64, (String, f64)>,
}

impl Held {
    /// What the turns of session `name` hold, and what all turns hold.
    pub(super) fn sums(&self, name: &str) -> (f64, f64) {
        self.turns
            .values()
            .fold((0.0, 0.0), |(session, all), (session_name, usd)| {
                let mine = if session_name == name { *usd } else { 0.0 };
                (
                    crate::api::add_usd(session, mine),
                    crate::api::add_usd(all, *usd),
                )
            })
    }
}

/// What all sessions spent while this claude-coded ran.
fn all_spent(slots: &BTreeMap<String, Slot>) -> f64 {
    slots
        .values()
        .map(|slot| slot_totals(slot).cost_usd)
        .fold(0.0, crate::api::add_usd)
}

/// What the session `name` may still spend: the least of what is left of its own budget
/// and of the budget of all sessions, beyond what running turns hold; `None` without
/// budgets.
pub(super) fn budget_left(
    config: &Config,
    slots: &BTreeMap<String, Slot>,
    held: &Held,
    name: &str,
) -> Option<Budget> {
    limits(config, slots, held, name)
        .into_iter()
        .map(|limit| Budget {
            usd: limit.left().max(0.0),
            scope: limit.scope,
        })
        .reduce(|least, next| if next.usd < least.usd { next } else { least })
}

/// One configured budget as it stands for a session.
pub(super) struct Limit {
    pub(super) scope: BudgetScope,
    /// Whose it is, for messages: "session `a`", "all sessions".
    pub(super) whose: String,
    pub(super) flag: &'static str,
    pub(super) limit: f64,
    pub(super) spent: f64,
    /// What running turns hold against it.
    held: f64,
}

impl Limit {
    fn left(&self) -> f64 {
        self.limit - crate::api::add_usd(self.spent, self.held)
    }

    fn exhausted(&self) -> AskError {
        AskError::BudgetExhausted {
            scope: self.whose.clone(),
            flag: self.flag,
            spent: self.spent,
            held: self.held,
            limit: self.limit,
        }
    }
}

/// The budgets configured for session `name`: its own and that of all sessions.
pub(super) fn limits(
    config: &Config,
    slots: &BTreeMap<String, Slot>,
    held: &Held,
    name: &str,
) -> Vec<Limit> {
    let (session_held, all_held) = held.sums(name);
    let session_spent = slots
        .get(name)
        .map_or(0.0, |slot| slot_totals(slot).cost_usd);
    let session = config.session_budget_usd.map(|limit| Limit {
        scope: BudgetScope::Session,
        whose: format!("session `{name}`"),
        flag: "session-budget-usd",
        limit,
        spent: session_spent,
        held: session_held,
    });
    let all = config.budget_usd.map(|limit| Limit {
        scope: BudgetScope::AllSessions,
        whose: "all sessions".to_string(),
        flag: "budget-usd",
        limit,
        spent: all_spent(slots),
        held: all_held,
    });
    [session, all].into_iter().flatten().collect()
}

/// One session's side of the daemon's budgets.
pub(super) struct SessionBook {
    pub(super) shared: std::sync::Weak<Shared>,
    pub(super) name: String,
}

impl BudgetBook for SessionBook {
    fn left(&self) -> Option<Budget> {
        let shared = self.shared.upgrade()?;
        let slots = lock(&shared.slots);
        let held = lock(&shared.held);
        budget_left(&shared.config, &slots, &held, &self.name)
    }

    /// Under the slots' lock, so what every session spent and holds is one picture, and
    /// the reservation is in before another turn can count it.
    fn reserve(&self, ask: Option<f64>) -> Result<Option<Reservation>, AskError> {
        let Some(shared) = self.shared.upgrade() else {
            return Ok(turn_cap(None, ask).map(Reservation::unheld));
        };
        let slots = lock(&shared.slots);
        let mut held = lock(&shared.held);
        let limits = limits(&shared.config, &slots, &held, &self.name);
        if let Some(short) = limits.iter().find(|l| l.left() < MIN_BUDGET_USD) {
            return Err(short.exhausted());
        }
        let left = budget_left(&shared.config, &slots, &held, &self.name);
        let Some(cap) = turn_cap(left, ask) else {
            return Ok(None);
        };
        if limits.is_empty() {
            // An ask's own budget alone: nothing else counts it.
            return Ok(Some(Reservation::unheld(cap)));
        }
        let token = held.next;
        held.next += 1;
        held.turns.insert(token, (self.name.clone(), cap.usd));
        let release = Release {
            shared: self.shared.clone(),
            token,
        };
        Ok(Some(Reservation::held(cap, Box::new(release))))
    }
}

/// Returns a turn's reservation when dropped.
struct Release {
    shared: std::sync::Weak<Shared>,
    token: u64,
}

impl Drop for Release {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            lock(&shared.held).turns.remove(&self.token);
        }
    }
}
