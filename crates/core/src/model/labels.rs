//! A grouping key stored compactly: a replica of 100 000 groups holds 100 000 of them for a whole
//! sweep, so a key is one boxed slice of shared strings instead of a map of owned ones.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// A grouping key exactly as the gateway's JSON API reports it (`labels` of a group), `job`
/// included. Sorted by name, each name once, so two keys compare equal whatever order the gateway
/// sent them in; ordered and compared like the `BTreeMap<String, String>` it replaces.
///
/// Names and values are `Arc<str>`: a read shares each label name, and each job name, among all
/// its groups through an [`Interner`], so a group pays only for its own values.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(Box<[(Arc<str>, Arc<str>)]>);

impl Labels {
    pub fn new() -> Self {
        Labels::default()
    }

    /// The value of label `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.position(name).ok().map(|i| &*self.0[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    /// `(name, value)` pairs, sorted by name.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + Clone + '_ {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets `name` to `value`, replacing an earlier value. Copies the whole key: for building
    /// keys by hand, not for reading replicas.
    pub fn insert(&mut self, name: String, value: String) {
        let mut pairs = std::mem::take(&mut self.0).into_vec();
        match pairs.binary_search_by(|(k, _)| (**k).cmp(name.as_str())) {
            Ok(i) => pairs[i].1 = value.into(),
            Err(i) => pairs.insert(i, (name.into(), value.into())),
        }
        self.0 = pairs.into_boxed_slice();
    }

    /// From pairs already shared (interned); sorts them and keeps the last value of a repeated
    /// name, as a map would.
    pub fn from_pairs(mut pairs: Vec<(Arc<str>, Arc<str>)>) -> Self {
        // Stable: among equal names the last one read stays last, and `dedup` keeps the first,
        // so reverse first to keep the last.
        pairs.reverse();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|later, earlier| later.0 == earlier.0);
        Labels(pairs.into_boxed_slice())
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| (**k).cmp(name))
    }
}

/// `labels["job"]`, like a map: panics when the label is missing.
impl std::ops::Index<&str> for Labels {
    type Output = str;
    fn index(&self, name: &str) -> &str {
        self.get(name)
            .unwrap_or_else(|| panic!("no label {name:?} in {self:?}"))
    }
}

impl<K: Into<Arc<str>>, V: Into<Arc<str>>> FromIterator<(K, V)> for Labels {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Labels::from_pairs(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl<K: Into<Arc<str>>, V: Into<Arc<str>>, const N: usize> From<[(K, V); N]> for Labels {
    fn from(pairs: [(K, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

/// The plain map, for code that compares keys with maps read elsewhere (JSON output).
impl From<&Labels> for std::collections::BTreeMap<String, String> {
    fn from(labels: &Labels) -> Self {
        labels
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = (&'a str, &'a str);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Arc<str>, Arc<str>)>,
        fn(&'a (Arc<str>, Arc<str>)) -> (&'a str, &'a str),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// As a JSON object, like the map it replaces.
impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// One copy of each string handed to it, for the strings many keys repeat (label names, job
/// names). Lives for one read; the keys keep their strings after it is dropped.
#[derive(Debug, Default)]
pub struct Interner(HashSet<Arc<str>>);

impl Interner {
    pub fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(shared) = self.0.get(s) {
            return shared.clone();
        }
        let shared: Arc<str> = s.into();
        self.0.insert(shared.clone());
        shared
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn keys_sort_get_and_order_like_a_map() {
        let keys: [&[(&str, &str)]; 6] = [
            &[("job", "a"), ("instance", "x")],
            &[("job", "a")],
            &[("instance", "x"), ("job", "a"), ("a", "")],
            &[("job", "b")],
            &[],
            &[("job", "a"), ("instance", "")],
        ];
        for a in keys {
            let la: Labels = a.iter().copied().collect();
            let ma = map(a);
            let pairs: Vec<_> = la.iter().collect();
            let expected: Vec<_> = ma.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            assert_eq!(pairs, expected);
            assert_eq!(la.len(), ma.len());
            assert_eq!(la.get("job"), ma.get("job").map(String::as_str));
            assert_eq!(la.get("nope"), None);
            assert_eq!(format!("{la:?}"), format!("{ma:?}"));
            assert_eq!(
                serde_json::to_string(&la).unwrap(),
                serde_json::to_string(&ma).unwrap()
            );
            for b in keys {
                let lb: Labels = b.iter().copied().collect();
                assert_eq!(la.cmp(&lb), ma.cmp(&map(b)), "{a:?} vs {b:?}");
                assert_eq!(la == lb, ma == map(b));
            }
        }
    }

    #[test]
    fn a_repeated_name_keeps_its_last_value_like_a_map() {
        let l: Labels = [("job", "a"), ("x", "1"), ("job", "b")].into();
        assert_eq!(l.iter().collect::<Vec<_>>(), [("job", "b"), ("x", "1")]);
        let mut l = l;
        l.insert("x".into(), "2".into());
        l.insert("a".into(), String::new());
        assert_eq!(
            l.iter().collect::<Vec<_>>(),
            [("a", ""), ("job", "b"), ("x", "2")]
        );
    }

    #[test]
    fn the_interner_hands_out_one_shared_copy() {
        let mut interner = Interner::default();
        let a = interner.get("instance");
        let b = interner.get(&String::from("instance"));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &interner.get("job")));
    }
}
