//! What a controller remembers of an object between passes, by uid, for (most of) one resync
//! period: a cache of what MAAS said, never a marker that correctness rests on (markers live in
//! annotations and in MAAS). Forgetting everything, as a restart does, only costs MAAS reads.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A memo per object uid that goes stale after `ttl`.
#[derive(Debug)]
pub struct Memo<T> {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, T)>>,
}

impl<T: Clone> Memo<T> {
    /// A memo whose entries are good for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Memo {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// A memo good for most of a resync period: the margin keeps the resync pass itself from
    /// being answered from the memo.
    pub fn for_resync(sync_period: Duration) -> Self {
        Self::new(sync_period.mul_f64(0.9))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, T)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What is remembered of `uid`, while fresh.
    pub fn get(&self, uid: &str) -> Option<T> {
        self.lock()
            .get(uid)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, value)| value.clone())
    }

    /// Remembers `value` for `uid` from now (`Some`), or forgets `uid` (`None`).
    pub fn set(&self, uid: &str, value: Option<T>) {
        let mut entries = self.lock();
        match value {
            Some(v) => {
                entries.insert(uid.to_string(), (Instant::now(), v));
            }
            None => {
                entries.remove(uid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_good_until_it_goes_stale_or_is_forgotten() {
        let memo = Memo::new(Duration::from_secs(60));
        assert_eq!(memo.get("u"), None);
        memo.set("u", Some(7));
        assert_eq!(memo.get("u"), Some(7));
        memo.set("u", None);
        assert_eq!(memo.get("u"), None);
        let stale = Memo::new(Duration::ZERO);
        stale.set("u", Some(1));
        assert_eq!(stale.get("u"), None, "a zero ttl remembers nothing");
    }

    #[test]
    fn the_resync_pass_is_never_answered_from_the_memo() {
        let memo: Memo<u8> = Memo::for_resync(Duration::from_secs(100));
        assert_eq!(memo.ttl, Duration::from_secs(90));
    }
}
