//! Lcore sets: which lcore ids exist and which CPUs each may run on.
//!
//! DPDK has three spellings for the same thing, and dpmem accepts all three:
//!
//! - `-c 0xf` — a hexadecimal mask; bit *i* set means lcore *i* runs on CPU *i*.
//! - `-l 0-3,5` — a list of ids and ranges; again lcore *i* runs on CPU *i*.
//! - `--lcores '1,2@(5-7),(3-5)@(0,2),(0,6),7-8'` — lcore sets, each optionally followed by
//!   `@` and the CPU set its lcores share. Without `@` a plain range `7-8` maps each lcore to
//!   its own CPU, while a group `(0,6)` maps every lcore of the group to the whole group.
//!
//! The grammar of `--lcores`, as DPDK's `eal_parse_lcores` accepts it:
//!
//! ```text
//! lcores := entry (',' entry)*
//! entry  := set ('@' set)?
//! set    := number | number '-' number | '(' item (',' item)* ')'
//! item   := number | number '-' number
//! ```
//!
//! Blanks (space, tab) may surround numbers and separators. dpmem is stricter than DPDK in
//! two places, both of which DPDK silently tolerates: an lcore may not be named twice (DPDK
//! lets the last mapping win, which hides typos), and `-l` refuses empty list elements
//! (`0-1,,2`) and reversed ranges (`3-1`, which DPDK's `-l` turns into nothing at all).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::error::OptionsError;

/// Number of lcore ids (`RTE_MAX_LCORE` of DPDK's default build): ids are `0..MAX_LCORE`.
pub const MAX_LCORE: u32 = 128;

/// Number of CPU ids a CPU set can hold (`CPU_SETSIZE` of glibc): CPUs are `0..MAX_CPU`.
///
/// CPU ids may exceed [`MAX_LCORE`]; `--lcores` is how DPDK reaches such CPUs
/// (`--lcores 0@200`).
pub const MAX_CPU: u32 = 1024;

/// Map from lcore id to the set of CPUs that lcore's thread may run on, ordered by lcore id.
///
/// Invariants, kept by every constructor: lcore ids are below [`MAX_LCORE`], every CPU set
/// is non-empty and its ids are below [`MAX_CPU`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LcoreMap {
    map: BTreeMap<u32, BTreeSet<u32>>,
}

impl LcoreMap {
    /// An empty map (not a valid lcore set on its own: EAL needs at least one lcore).
    pub fn new() -> Self {
        Self::default()
    }

    /// Lcores `ids`, each running on the CPU with the same id (what `-l` and `-c` mean).
    pub fn identity<I: IntoIterator<Item = u32>>(ids: I) -> Result<Self, OptionsError> {
        let mut map = Self::new();
        for id in ids {
            map.insert(id, BTreeSet::from([id]))?;
        }
        Ok(map)
    }

    /// Adds `lcore` running on `cpus`; refuses out-of-range ids, an empty CPU set and an
    /// lcore that is already present.
    pub fn insert(&mut self, lcore: u32, cpus: BTreeSet<u32>) -> Result<(), OptionsError> {
        let shown = || format!("{lcore}@{}", cpu_set_text(&cpus));
        if lcore >= MAX_LCORE {
            return Err(OptionsError::invalid(
                "--lcores",
                &shown(),
                format!("lcore id {lcore} is not below MAX_LCORE ({MAX_LCORE})"),
            ));
        }
        if cpus.is_empty() {
            return Err(OptionsError::invalid(
                "--lcores",
                &shown(),
                format!("lcore {lcore} has an empty cpu set"),
            ));
        }
        if let Some(&cpu) = cpus.iter().find(|&&c| c >= MAX_CPU) {
            return Err(OptionsError::invalid(
                "--lcores",
                &shown(),
                format!("cpu id {cpu} is not below {MAX_CPU}"),
            ));
        }
        if self.map.contains_key(&lcore) {
            return Err(OptionsError::invalid(
                "--lcores",
                &shown(),
                format!("lcore {lcore} is given more than once"),
            ));
        }
        self.map.insert(lcore, cpus);
        Ok(())
    }

    /// `(lcore id, cpu set)` pairs in increasing lcore id order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &BTreeSet<u32>)> + '_ {
        self.map.iter().map(|(&l, c)| (l, c))
    }

    /// The CPU set of `lcore`, if that lcore is in the map.
    pub fn get(&self, lcore: u32) -> Option<&BTreeSet<u32>> {
        self.map.get(&lcore)
    }

    /// Whether `lcore` is in the map.
    pub fn contains(&self, lcore: u32) -> bool {
        self.map.contains_key(&lcore)
    }

    /// Number of lcores.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the map has no lcore.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Lcore ids in increasing order.
    pub fn lcore_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.map.keys().copied()
    }

    /// Whether every lcore runs exactly on the CPU with its own id, i.e. the map could have
    /// been written with `-l`.
    pub fn is_identity(&self) -> bool {
        self.map
            .iter()
            .all(|(&l, cpus)| cpus.len() == 1 && cpus.contains(&l))
    }

    /// The map in `--lcores` syntax; parsing it back gives an equal map.
    ///
    /// Lcores sharing one CPU set are grouped, so the documented example comes back as
    /// something close to what was typed.
    pub fn to_lcores_arg(&self) -> String {
        // Group lcores by CPU set, keeping the order of each set's first lcore.
        let mut groups: Vec<(&BTreeSet<u32>, Vec<u32>)> = Vec::new();
        for (&lcore, cpus) in &self.map {
            match groups.iter_mut().find(|(c, _)| *c == cpus) {
                Some((_, lcores)) => lcores.push(lcore),
                None => groups.push((cpus, vec![lcore])),
            }
        }
        let mut out = String::new();
        for (cpus, lcores) in groups {
            if !out.is_empty() {
                out.push(',');
            }
            let lcore_set: BTreeSet<u32> = lcores.iter().copied().collect();
            if lcores.len() == 1 && cpus.len() == 1 && cpus.contains(&lcores[0]) {
                let _ = write!(out, "{}", lcores[0]);
            } else {
                let _ = write!(out, "{}@{}", cpu_set_text(&lcore_set), cpu_set_text(cpus));
            }
        }
        out
    }

    /// The lcore ids in `-l` syntax (`0-3,5`); meaningful for identity maps.
    pub fn to_corelist_arg(&self) -> String {
        ranges_text(self.map.keys().copied())
    }
}

/// `ids` as `a-b,c` (ascending, runs collapsed into ranges).
pub(crate) fn ranges_text<I: IntoIterator<Item = u32>>(ids: I) -> String {
    let mut out = String::new();
    let mut run: Option<(u32, u32)> = None;
    let flush = |out: &mut String, (a, b): (u32, u32)| {
        if !out.is_empty() {
            out.push(',');
        }
        if a == b {
            let _ = write!(out, "{a}");
        } else {
            let _ = write!(out, "{a}-{b}");
        }
    };
    for id in ids {
        run = match run {
            Some((a, b)) if id == b + 1 => Some((a, id)),
            Some(r) => {
                flush(&mut out, r);
                Some((id, id))
            }
            None => Some((id, id)),
        };
    }
    if let Some(r) = run {
        flush(&mut out, r);
    }
    out
}

/// A set in `--lcores` syntax: a bare number when it has one member, a group otherwise.
/// A bare range is avoided on purpose: without `@` it would mean one CPU per lcore.
fn cpu_set_text(set: &BTreeSet<u32>) -> String {
    if set.len() == 1 {
        set.iter().next().map(u32::to_string).unwrap_or_default()
    } else {
        format!("({})", ranges_text(set.iter().copied()))
    }
}

/// Byte cursor over one option value, producing errors that quote the whole value.
struct Cursor<'a> {
    option: &'static str,
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(option: &'static str, text: &'a str) -> Self {
        Cursor {
            option,
            text,
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    fn error(&self, reason: impl Into<String>) -> OptionsError {
        OptionsError::invalid(self.option, self.text, reason)
    }

    /// Error about whatever is at the cursor ("unexpected ',' at offset 4").
    fn unexpected(&self, wanted: &str) -> OptionsError {
        match self.peek() {
            None => self.error(format!("expected {wanted}, found end of value")),
            Some(c) => self.error(format!(
                "expected {wanted}, found '{}' at offset {}",
                c as char, self.pos
            )),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_blanks();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn at_end(&mut self) -> bool {
        self.skip_blanks();
        self.pos == self.bytes.len()
    }

    /// A decimal number; refuses signs, so `-5` and `(-1,2)` fail here.
    fn number(&mut self) -> Result<u32, OptionsError> {
        self.skip_blanks();
        let start = self.pos;
        let mut value: u32 = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u32::from(c - b'0')))
                .ok_or_else(|| self.error("number too large"))?;
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.unexpected("a number"));
        }
        Ok(value)
    }
}

/// How a `--lcores` set was written; decides the default CPU mapping when `@` is absent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SetForm {
    /// `5` or `5-7`: without `@`, each lcore runs on its own CPU.
    Bare,
    /// `(0,6)`: without `@`, every lcore runs on the whole group.
    Group,
}

/// One `--lcores` set. Reversed ranges (`7-5`) are accepted, as DPDK does.
fn lcores_set(cur: &mut Cursor<'_>) -> Result<(BTreeSet<u32>, SetForm), OptionsError> {
    let mut set = BTreeSet::new();
    let range = |cur: &mut Cursor<'_>, set: &mut BTreeSet<u32>| -> Result<(), _> {
        let a = cur.number()?;
        let b = if cur.eat(b'-') { cur.number()? } else { a };
        let (lo, hi) = (a.min(b), a.max(b));
        if hi >= MAX_CPU {
            return Err(cur.error(format!("id {hi} is not below {MAX_CPU}")));
        }
        set.extend(lo..=hi);
        Ok(())
    };
    if cur.eat(b'(') {
        loop {
            range(cur, &mut set)?;
            if cur.eat(b',') {
                continue;
            }
            if cur.eat(b')') {
                return Ok((set, SetForm::Group));
            }
            return Err(cur.unexpected("',' or ')' inside a group"));
        }
    }
    cur.skip_blanks();
    if !matches!(cur.peek(), Some(b'0'..=b'9')) {
        return Err(cur.unexpected("a number or '('"));
    }
    range(cur, &mut set)?;
    Ok((set, SetForm::Bare))
}

/// Parses the `--lcores` grammar (see the module documentation).
pub(crate) fn parse_lcores(option: &'static str, text: &str) -> Result<LcoreMap, OptionsError> {
    let mut cur = Cursor::new(option, text);
    if cur.at_end() {
        return Err(cur.error("empty lcore set"));
    }
    let mut map = LcoreMap::new();
    loop {
        let (lcores, form) = lcores_set(&mut cur)?;
        let explicit_cpus = if cur.eat(b'@') {
            Some(lcores_set(&mut cur)?.0)
        } else {
            None
        };
        for &lcore in &lcores {
            if lcore >= MAX_LCORE {
                return Err(cur.error(format!(
                    "lcore id {lcore} is not below MAX_LCORE ({MAX_LCORE}); \
                     map high cpus to low lcore ids with '@', e.g. 0@{lcore}"
                )));
            }
            let cpus = match (&explicit_cpus, form) {
                (Some(cpus), _) => cpus.clone(),
                (None, SetForm::Bare) => BTreeSet::from([lcore]),
                (None, SetForm::Group) => lcores.clone(),
            };
            if map.contains(lcore) {
                return Err(cur.error(format!("lcore {lcore} is given more than once")));
            }
            map.insert(lcore, cpus)?;
        }
        if cur.at_end() {
            return Ok(map);
        }
        if !cur.eat(b',') {
            return Err(cur.unexpected("',' or '@'"));
        }
        if cur.at_end() {
            return Err(cur.error("trailing ',' without an lcore set after it"));
        }
    }
}

/// Parses a `-l` core list: `0-3,5`; lcore *i* runs on CPU *i*.
pub(crate) fn parse_corelist(option: &'static str, text: &str) -> Result<LcoreMap, OptionsError> {
    let mut cur = Cursor::new(option, text);
    if cur.at_end() {
        return Err(cur.error("empty core list"));
    }
    let mut map = LcoreMap::new();
    loop {
        let first = cur.number()?;
        let last = if cur.eat(b'-') { cur.number()? } else { first };
        if last < first {
            return Err(cur.error(format!(
                "range {first}-{last} runs backwards (write {last}-{first})"
            )));
        }
        if last >= MAX_LCORE {
            return Err(cur.error(format!(
                "core {last} is not below MAX_LCORE ({MAX_LCORE}); use --lcores to map \
                 high cpus to low lcore ids, e.g. --lcores 0@{last}"
            )));
        }
        for id in first..=last {
            if map.contains(id) {
                return Err(cur.error(format!("core {id} is given more than once")));
            }
            map.insert(id, BTreeSet::from([id]))?;
        }
        if cur.at_end() {
            return Ok(map);
        }
        if !cur.eat(b',') {
            return Err(cur.unexpected("',' or '-'"));
        }
        if cur.at_end() {
            return Err(cur.error("trailing ',' without a core after it"));
        }
    }
}

/// Parses a `-c` hexadecimal core mask (`0xf`, `F`, blanks around, `0x` optional).
pub(crate) fn parse_coremask(option: &'static str, text: &str) -> Result<LcoreMap, OptionsError> {
    let err = |reason: String| OptionsError::invalid(option, text, reason);
    let trimmed = text.trim_matches([' ', '\t']);
    let digits = trimmed
        .strip_prefix("0x")
        .or_else(|| trimmed.strip_prefix("0X"))
        .unwrap_or(trimmed);
    if digits.is_empty() {
        return Err(err("empty core mask".to_owned()));
    }
    let mut ids = Vec::new();
    // The last hex digit holds cores 0-3, the one before it 4-7, and so on.
    for (nibble_index, c) in digits.chars().rev().enumerate() {
        let nibble = c
            .to_digit(16)
            .ok_or_else(|| err(format!("'{c}' is not a hexadecimal digit")))?;
        for bit in 0..4 {
            if nibble & (1 << bit) == 0 {
                continue;
            }
            let core = nibble_index as u64 * 4 + bit;
            if core >= u64::from(MAX_LCORE) {
                return Err(err(format!(
                    "core {core} is not below MAX_LCORE ({MAX_LCORE}); use --lcores to map \
                     high cpus to low lcore ids"
                )));
            }
            ids.push(core as u32);
        }
    }
    if ids.is_empty() {
        return Err(err("no core is set in the mask".to_owned()));
    }
    LcoreMap::identity(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[u32]) -> BTreeSet<u32> {
        ids.iter().copied().collect()
    }

    #[test]
    fn documented_example_maps_nine_lcores() {
        let map = parse_lcores("--lcores", "1,2@(5-7),(3-5)@(0,2),(0,6),7-8").unwrap();
        assert_eq!(map.len(), 9);
        assert_eq!(map.get(0), Some(&set(&[0, 6])));
        assert_eq!(map.get(1), Some(&set(&[1])));
        assert_eq!(map.get(2), Some(&set(&[5, 6, 7])));
        for l in 3..=5 {
            assert_eq!(map.get(l), Some(&set(&[0, 2])));
        }
        assert_eq!(map.get(6), Some(&set(&[0, 6])));
        assert_eq!(map.get(7), Some(&set(&[7])));
        assert_eq!(map.get(8), Some(&set(&[8])));
    }

    #[test]
    fn rendering_round_trips() {
        let map = parse_lcores("--lcores", "1,2@(5-7),(3-5)@(0,2),(0,6),7-8").unwrap();
        let text = map.to_lcores_arg();
        assert_eq!(parse_lcores("--lcores", &text).unwrap(), map, "{text}");
    }

    #[test]
    fn blanks_are_allowed_around_numbers() {
        assert_eq!(
            parse_corelist("-l", " 0 - 1 ").unwrap(),
            LcoreMap::identity([0, 1]).unwrap()
        );
        assert_eq!(
            parse_lcores("--lcores", "( 0 , 2 ) @ 3").unwrap().get(2),
            Some(&set(&[3]))
        );
    }

    #[test]
    fn reversed_range_in_lcores_is_accepted_as_dpdk_does() {
        assert_eq!(
            parse_lcores("--lcores", "3-1").unwrap(),
            LcoreMap::identity([1, 2, 3]).unwrap()
        );
    }

    #[test]
    fn high_cpu_reachable_through_at() {
        let map = parse_lcores("--lcores", "0@1000").unwrap();
        assert_eq!(map.get(0), Some(&set(&[1000])));
        assert!(parse_lcores("--lcores", "0@1024").is_err());
    }

    #[test]
    fn coremask_bits() {
        assert_eq!(
            parse_coremask("-c", "0xf").unwrap(),
            LcoreMap::identity(0..4).unwrap()
        );
        assert_eq!(
            parse_coremask("-c", " A ").unwrap(),
            LcoreMap::identity([1, 3]).unwrap()
        );
        // 32 hex digits = 128 cores; a set bit 128 is refused, zeros above are fine.
        let top = format!("8{}", "0".repeat(31));
        assert_eq!(
            parse_coremask("-c", &top).unwrap().lcore_ids().next(),
            Some(127)
        );
        assert!(parse_coremask("-c", &format!("1{}", "0".repeat(32))).is_err());
        // Leading zeros beyond 128 bits are harmless.
        assert!(parse_coremask("-c", &format!("{}1", "0".repeat(40))).is_ok());
    }

    #[test]
    fn ranges_text_collapses_runs() {
        assert_eq!(ranges_text([0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(ranges_text([]), "");
    }
}
