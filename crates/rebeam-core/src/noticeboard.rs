//! The noticeboard: bocpy's small global key-value store that behaviours read as a snapshot.
//!
//! Rules (bocpy 0.14, plus a version per entry so updates can be atomic without running
//! Python in the governor):
//! - At most [`MAX_ENTRIES`] keys; a key is a non-empty string of at most [`MAX_KEY_BYTES`]
//!   UTF-8 bytes with no NUL. Writing a new key into a full board is refused; overwriting or
//!   deleting an existing key always works.
//! - Every write or delete bumps the board's version, and the entry remembers the version
//!   that wrote it. [`Noticeboard::update`] is a compare-and-set on that version (0 for an
//!   absent key): `notice_update(key, fn)` reads, applies `fn` in the caller, and retries the
//!   set until no other write came in between, so concurrent updates never lose one another.
//! - A snapshot is every entry at one instant: writes are applied in the order the governor
//!   receives them, so a process sees its own writes in its next snapshot.

use std::collections::BTreeMap;

/// bocpy's limit on distinct keys.
pub const MAX_ENTRIES: usize = 64;
/// bocpy's limit on a key's length, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 63;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoticeError {
    #[error("the noticeboard is full ({MAX_ENTRIES} keys): delete a key before adding {0:?}")]
    Full(String),
    #[error("noticeboard key {0:?} is invalid: a key is a non-empty str of at most {MAX_KEY_BYTES} UTF-8 bytes, without NUL")]
    BadKey(String),
}

/// Checks a key against bocpy's rules.
pub fn check_key(key: &str) -> Result<(), NoticeError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES || key.contains('\0') {
        return Err(NoticeError::BadKey(key.chars().take(80).collect()));
    }
    Ok(())
}

/// The board: values of type `V` (the governor stores pickled payloads) under versions.
#[derive(Debug, Clone)]
pub struct Noticeboard<V> {
    entries: BTreeMap<String, (u64, V)>,
    version: u64,
}

impl<V> Default for Noticeboard<V> {
    fn default() -> Self {
        Self { entries: BTreeMap::new(), version: 0 }
    }
}

impl<V: Clone> Noticeboard<V> {
    /// Sets `key` to `value`, or deletes it when `value` is None.
    pub fn write(&mut self, key: &str, value: Option<V>) -> Result<(), NoticeError> {
        check_key(key)?;
        match value {
            None => {
                if self.entries.remove(key).is_some() {
                    self.version += 1;
                }
            }
            Some(v) => {
                if !self.entries.contains_key(key) && self.entries.len() >= MAX_ENTRIES {
                    return Err(NoticeError::Full(key.to_string()));
                }
                self.version += 1;
                self.entries.insert(key.to_string(), (self.version, v));
            }
        }
        Ok(())
    }

    /// Writes (or deletes) `key` only if its version is still `expected` (0: absent).
    /// Returns whether it did.
    pub fn update(&mut self, key: &str, expected: u64, value: Option<V>) -> Result<bool, NoticeError> {
        check_key(key)?;
        if self.version_of(key) != expected {
            return Ok(false);
        }
        self.write(key, value)?;
        Ok(true)
    }

    /// The version of `key`'s current value; 0 when it is absent.
    pub fn version_of(&self, key: &str) -> u64 {
        self.entries.get(key).map_or(0, |(v, _)| *v)
    }

    /// `key`'s version and value, if present.
    pub fn get(&self, key: &str) -> Option<(u64, V)> {
        self.entries.get(key).cloned()
    }

    /// Every entry, in key order.
    pub fn snapshot(&self) -> Vec<(String, u64, V)> {
        self.entries.iter().map(|(k, (ver, v))| (k.clone(), *ver, v.clone())).collect()
    }

    pub fn clear(&mut self) {
        if !self.entries.is_empty() {
            self.version += 1;
        }
        self.entries.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_overwrite_and_delete() {
        let mut nb = Noticeboard::default();
        nb.write("a", Some(1)).unwrap();
        nb.write("a", Some(2)).unwrap();
        assert_eq!(nb.get("a").map(|(_, v)| v), Some(2));
        nb.write("a", None).unwrap();
        assert_eq!(nb.get("a"), None);
        // Deleting an absent key is a no-op, as in bocpy.
        nb.write("a", None).unwrap();
        assert!(nb.is_empty());
    }

    #[test]
    fn full_board_refuses_new_keys_only() {
        let mut nb = Noticeboard::default();
        for i in 0..MAX_ENTRIES {
            nb.write(&format!("k{i}"), Some(i)).unwrap();
        }
        assert_eq!(nb.write("new", Some(0)), Err(NoticeError::Full("new".into())));
        nb.write("k3", Some(99)).unwrap();
        nb.write("k4", None).unwrap();
        nb.write("new", Some(0)).unwrap();
        assert_eq!(nb.len(), MAX_ENTRIES);
    }

    #[test]
    fn keys_follow_bocpys_rules() {
        let mut nb = Noticeboard::default();
        assert!(nb.write(&"x".repeat(MAX_KEY_BYTES), Some(1)).is_ok());
        assert!(matches!(nb.write(&"x".repeat(MAX_KEY_BYTES + 1), Some(1)), Err(NoticeError::BadKey(_))));
        // 63 bytes, not 63 characters.
        assert!(matches!(nb.write(&"é".repeat(32), Some(1)), Err(NoticeError::BadKey(_))));
        assert!(matches!(nb.write("", Some(1)), Err(NoticeError::BadKey(_))));
        assert!(matches!(nb.write("a\0b", Some(1)), Err(NoticeError::BadKey(_))));
    }

    #[test]
    fn update_is_compare_and_set_on_the_version() {
        let mut nb = Noticeboard::default();
        // Absent: version 0.
        assert!(nb.update("n", 0, Some(1)).unwrap());
        let v1 = nb.version_of("n");
        assert!(!nb.update("n", 0, Some(5)).unwrap(), "a stale 'absent' must not win");
        // Another writer sneaks in: the updater that read v1 loses and must retry.
        nb.write("n", Some(10)).unwrap();
        assert!(!nb.update("n", v1, Some(2)).unwrap());
        let v2 = nb.version_of("n");
        assert!(nb.update("n", v2, Some(11)).unwrap());
        assert_eq!(nb.get("n").map(|(_, v)| v), Some(11));
        // Deleting through update, then the key is absent again.
        let v3 = nb.version_of("n");
        assert!(nb.update("n", v3, None).unwrap());
        assert_eq!(nb.version_of("n"), 0);
    }

    #[test]
    fn versions_never_repeat_across_delete_and_rewrite() {
        // A key deleted and written again must not come back with a version an updater saw.
        let mut nb = Noticeboard::default();
        nb.write("k", Some(1)).unwrap();
        let seen = nb.version_of("k");
        nb.write("k", None).unwrap();
        nb.write("k", Some(1)).unwrap();
        assert_ne!(nb.version_of("k"), seen);
        assert!(!nb.update("k", seen, Some(2)).unwrap());
    }

    #[test]
    fn concurrent_increments_by_cas_lose_nothing() {
        // Two updaters interleave read / compute / set as two processes would.
        let mut nb = Noticeboard::default();
        nb.write("total", Some(0)).unwrap();
        let mut done = [0, 0];
        while done.iter().sum::<i32>() < 200 {
            let reads: Vec<(u64, i32)> = (0..2).map(|_| nb.get("total").unwrap()).collect();
            for (i, (ver, val)) in reads.into_iter().enumerate() {
                if done[i] < 100 && nb.update("total", ver, Some(val + 1)).unwrap() {
                    done[i] += 1;
                }
            }
        }
        assert_eq!(nb.get("total").map(|(_, v)| v), Some(200));
    }
}
