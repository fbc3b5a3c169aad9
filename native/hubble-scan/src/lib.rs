//! microseg's scanner for `hubble observe -o jsonpb` lines, compiled to WebAssembly.
//!
//! JavaScript copies a block of whole lines (each ended by `\n`) into the input buffer and calls
//! `scan`. For every line the scanner writes one record of `SLOTS` 32-bit slots. A line whose record
//! has status `OK` was validated as JSON and every field normalisation reads is in its record; any
//! other line (status `SLOW`) must take the JSON.parse path. The scanner gives up on everything it
//! does not model: whitespace between tokens, escape sequences, control characters, bytes outside
//! ASCII, `null` where a field is read, numbers where names are expected, duplicate object-valued
//! keys, `l7` records, events and bare Flow objects.
//!
//! Values are interned: every string and sub-object the record refers to is named by a small id of
//! its kind. The first sight of a value appends `(kind, id, offset, length)` to the list of new
//! values, the offset pointing into the arena that keeps a copy of its bytes; JavaScript decodes new
//! values once and looks later ones up by id. Sub-objects (endpoints, services, name lists) are
//! looked up by a hash of their first bytes and compared in full against the remembered copies, so
//! an endpoint seen before is neither scanned nor validated again: a JSON value that equals, byte for
//! byte, a complete value validated earlier is that same value.

use core::arch::wasm32::*;
use std::vec::Vec;

/// Slots per line record.
pub const SLOTS: usize = 30;

const S_STATUS: usize = 0;
const S_START: usize = 1;
const S_END: usize = 2;
const S_HOUR: usize = 3;
const S_MS: usize = 4;
const S_VERDICT: usize = 5;
const S_DROP: usize = 6;
const S_TRACE: usize = 7;
const S_SRC_IP: usize = 8;
const S_DST_IP: usize = 9;
const S_L4: usize = 10;
const S_SPORT: usize = 11;
const S_DPORT: usize = 12;
const S_ICMP: usize = 13;
const S_SYN: usize = 14;
const S_ACK: usize = 15;
const S_SRC_EP: usize = 16;
const S_DST_EP: usize = 17;
const S_SRC_NAMES: usize = 18;
const S_DST_NAMES: usize = 19;
const S_SRC_SVC: usize = 20;
const S_DST_SVC: usize = 21;
const S_REPLY: usize = 22;
const S_IS_REPLY: usize = 23;
const S_L7_TYPE: usize = 24;
const S_DNS_QUERY: usize = 25;
/// Offset and length of the flow's `time` text within the block (for texts of other shapes).
const S_TIME_AT: usize = 26;
const S_TIME_LEN: usize = 27;
/// Offset and length of the envelope's `time` text (used when the flow has none).
const S_ENV_TIME_AT: usize = 28;
const S_ENV_TIME_LEN: usize = 29;

/// Largest enum number a slot holds (as -2 - n; string enums are ids >= 0, -1 is absent).
const MAX_ENUM_NUMBER: u32 = 1 << 30;

const OK: i32 = 0;
const SLOW: i32 = 1;

const KIND_STR: u32 = 0;
const KIND_HOUR: u32 = 1;
const KIND_EP: u32 = 2;
const KIND_NAMES: u32 = 3;
const KIND_SVC: u32 = 4;
const KIND_LABELS: u32 = 5;
const KINDS: usize = 6;

/// Bytes of zeros kept after the input, so that 16-byte loads near its end stay inside it.
const PAD: usize = 64;

/// Bytes hashed to find a remembered sub-object: up to the first `}` or `]`, at most this many.
const PREFIX: usize = 32;
/// Candidates with the same prefix hash compared before a sub-object counts as new.
const MAX_CANDIDATES: usize = 16;
/// Nesting depth the scanner follows before giving up.
const MAX_DEPTH: u32 = 64;

type R<T> = Result<T, ()>;

/// Byte classes inside a string: 0 plain, 1 closing quote, 2 give up (backslash, control, non-ASCII).
const CLASS: [u8; 256] = {
    let mut t = [2u8; 256];
    let mut i = 0x20;
    while i < 0x80 {
        t[i] = 0;
        i += 1;
    }
    t[b'"' as usize] = 1;
    t[b'\\' as usize] = 2;
    t
};

struct Entry {
    hash: u32,
    kind: u32,
    off: u32,
    /// Length of the value's text. An endpoint whose `labels` array is interned holds its text without
    /// that array's bytes: `split` bytes, then the labels entry's bytes, then the rest (`len` counts
    /// all three). The pods of a workload share one labels array, which is most of an endpoint's text.
    len: u32,
    split: u32,
    /// The labels entry, plus one (0: the whole text is in the arena at `off`).
    lab: u32,
    id: u32,
    /// Next entry in the same bucket, plus one (0: none).
    next: u32,
    /// Endpoints: the address last seen with this endpoint (its string id and bytes), which a flow's
    /// address is compared with before the string table is asked.
    ip_id: u32,
    ip_len: u32,
    ip: [u8; IP_INLINE],
}

/// Arena bytes reserved at first use: JavaScript forgets the interned values between blocks once the
/// arena passes 64 MiB, and one block adds at most its own size.
const ARENA_RESERVE: usize = 72 << 20;
/// Entries reserved at first use (a 64 MiB arena of Hubble values holds fewer).
const ENTRIES_RESERVE: usize = 1 << 19;

/// Values remembered per record slot (trace reasons and protocols alternate among a few).
const SLOT_VALUES: usize = 4;

/// Longest address kept inline in an endpoint's entry (any IPv4 text fits).
const IP_INLINE: usize = 16;
/// Endpoints looked up most recently, compared before the table (flows of one connection come close
/// together). Few: every lookup scans them all, and on the benchmark's lines 16 cost more than they
/// saved (the scan alone 0.85 µs per line with 16, 0.80 with 4).
const RECENT: usize = 4;

struct Tables {
    arena: Vec<u8>,
    entries: Vec<Entry>,
    /// First entry of each bucket, plus one (0: empty).
    buckets: Vec<u32>,
    counts: [u32; KINDS],
    /// Index of the entry inserted last.
    last: usize,
    /// Index of the entry the last `intern` found or inserted.
    found: usize,
    /// Per record slot: the entry (plus one; 0: none) and id of the slot's last SLOT_VALUES string
    /// values, the most recent first.
    by_slot: [[(u32, u32); SLOT_VALUES]; SLOTS],
    /// Recently found endpoints: (prefix hash, entry index + 1), a ring.
    recent: [(u32, u32); RECENT],
    recent_at: usize,
    /// New values: (kind, id, arena offset, length, n, then n more words) for each; endpoints carry
    /// their decoded fields in the n words (see `Endpoint::push`).
    news: Vec<u32>,
}

struct State {
    input: Vec<u8>,
    out: Vec<i32>,
    tables: Tables,
}

static mut STATE: State = State {
    input: Vec::new(),
    out: Vec::new(),
    tables: Tables {
        arena: Vec::new(),
        entries: Vec::new(),
        buckets: Vec::new(),
        counts: [0; KINDS],
        last: 0,
        found: 0,
        by_slot: [[(0, 0); SLOT_VALUES]; SLOTS],
        recent: [(0, 0); RECENT],
        recent_at: 0,
        news: Vec::new(),
    },
};

fn state() -> &'static mut State {
    // Single-threaded WebAssembly instance; JavaScript calls one export at a time.
    unsafe { &mut *(&raw mut STATE) }
}

#[inline(always)]
/// Hash of a byte string, sixteen bytes at a time in two independent lanes (a multiply-rotate word
/// hash each, so that the two multiplications of a step overlap).
fn hash(s: &[u8]) -> u32 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    const K2: u64 = 0x9e37_79b9_7f4a_7c15;
    let word = |c: &[u8]| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
    let mut a: u64 = s.len() as u64;
    let mut b: u64 = 0;
    let mut chunks = s.chunks_exact(16);
    for c in &mut chunks {
        a = (a.rotate_left(5) ^ word(&c[..8])).wrapping_mul(K);
        b = (b.rotate_left(5) ^ word(&c[8..])).wrapping_mul(K2);
    }
    let mut rest = chunks.remainder();
    if rest.len() >= 8 {
        a = (a.rotate_left(5) ^ word(rest)).wrapping_mul(K);
        rest = &rest[8..];
    }
    let n = rest.len();
    if n > 0 {
        // The last 1 to 7 bytes by (overlapping) loads inside the slice: no copy, which would compile
        // to `memory.copy`, a call in the engine. (The length went into the hash at its start.)
        let w = if n >= 4 {
            let half = |i: usize| u32::from_le_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]) as u64;
            half(0) | half(n - 4) << 32
        } else {
            rest[0] as u64 | (rest[n / 2] as u64) << 8 | (rest[n - 1] as u64) << 16
        };
        b = (b.rotate_left(5) ^ w).wrapping_mul(K2);
    }
    let h = a ^ b.rotate_left(29);
    (h ^ (h >> 29) ^ (h >> 47)) as u32
}

impl Tables {
    fn bucket(&self, hash: u32, kind: u32) -> usize {
        let h = hash ^ kind.wrapping_mul(0x9e37_79b9);
        (h.wrapping_mul(0x85eb_ca6b) >> 8) as usize & (self.buckets.len() - 1)
    }

    fn insert(&mut self, kind: u32, hash: u32, bytes: &[u8], extra: &[u32]) -> u32 {
        self.insert_cut(kind, hash, bytes, 0, 0, 0, extra)
    }

    /// `insert`, with `bytes[cut..cut + cut_len]` left out of the arena: they are the bytes of the entry
    /// `lab - 1` (when `lab` is not 0).
    #[allow(clippy::too_many_arguments)]
    fn insert_cut(
        &mut self,
        kind: u32,
        hash: u32,
        bytes: &[u8],
        cut: usize,
        cut_len: usize,
        lab: u32,
        extra: &[u32],
    ) -> u32 {
        if self.buckets.is_empty() || self.entries.len() >= self.buckets.len() {
            self.grow();
        }
        if self.arena.capacity() == 0 {
            // Reserved once and kept across resets: growing by doubling would leave the old copies in
            // linear memory, which never shrinks. Pages are resident only once written.
            self.arena.reserve_exact(ARENA_RESERVE);
            self.entries.reserve_exact(ENTRIES_RESERVE);
        }
        let id = self.counts[kind as usize];
        self.counts[kind as usize] += 1;
        let off = self.arena.len() as u32;
        let split = if lab == 0 {
            self.arena.extend_from_slice(bytes);
            bytes.len()
        } else {
            self.arena.extend_from_slice(&bytes[..cut]);
            self.arena.extend_from_slice(&bytes[cut + cut_len..]);
            cut
        };
        let b = self.bucket(hash, kind);
        let next = self.buckets[b];
        self.entries.push(Entry {
            hash,
            kind,
            off,
            len: bytes.len() as u32,
            split: split as u32,
            lab,
            id,
            next,
            ip_id: 0,
            ip_len: u32::MAX,
            ip: [0; IP_INLINE],
        });
        self.buckets[b] = self.entries.len() as u32;
        self.last = self.entries.len() - 1;
        // (JavaScript reads the text of new values other than endpoints, which are never cut.)
        self.news.extend_from_slice(&[kind, id, off, bytes.len() as u32, extra.len() as u32]);
        self.news.extend_from_slice(extra);
        id
    }

    fn grow(&mut self) {
        let size = (self.buckets.len() * 2).max(1 << 14);
        self.buckets.clear();
        self.buckets.resize(size, 0);
        for i in 0..self.entries.len() {
            let b = self.bucket(self.entries[i].hash, self.entries[i].kind);
            self.entries[i].next = self.buckets[b];
            self.buckets[b] = i as u32 + 1;
        }
    }

    /// Id of the string bytes `s` of `kind` for record slot `slot`: most slots repeat one of their
    /// last few values (verdict, protocol, trace reason, hour), which are compared first.
    fn intern_slot(&mut self, slot: usize, kind: u32, s: &[u8]) -> u32 {
        let last = &mut self.by_slot[slot];
        for &(e, id) in last.iter() {
            if e == 0 {
                break;
            }
            let en = &self.entries[e as usize - 1];
            if en.len as usize == s.len() && same(&self.arena[en.off as usize..(en.off + en.len) as usize], s) {
                return id;
            }
        }
        let id = self.intern(kind, s);
        let last = &mut self.by_slot[slot];
        last.copy_within(0..SLOT_VALUES - 1, 1);
        last[0] = (self.found as u32 + 1, id);
        id
    }

    /// Id of the string bytes `s` of `kind`, interning it on first sight.
    fn intern(&mut self, kind: u32, s: &[u8]) -> u32 {
        let h = hash(s);
        if !self.buckets.is_empty() {
            let mut e = self.buckets[self.bucket(h, kind)];
            while e != 0 {
                let en = &self.entries[e as usize - 1];
                if en.hash == h
                    && en.kind == kind
                    && en.len as usize == s.len()
                    && same(&self.arena[en.off as usize..(en.off + en.len) as usize], s)
                {
                    self.found = e as usize - 1;
                    return en.id;
                }
                e = en.next;
            }
        }
        let id = self.insert(kind, h, s, &[]);
        self.found = self.last;
        id
    }

    /// A remembered sub-object of `kind` that `b` starts with: its entry's index.
    fn find_text(&mut self, kind: u32, hash: u32, b: &[u8]) -> Option<usize> {
        if self.buckets.is_empty() {
            return None;
        }
        for &(h, e) in &self.recent {
            if h == hash && e != 0 {
                let en = &self.entries[e as usize - 1];
                if en.kind == kind && self.starts(b, en) {
                    return Some(e as usize - 1);
                }
            }
        }
        let mut e = self.buckets[self.bucket(hash, kind)];
        let mut tried = 0;
        while e != 0 && tried < MAX_CANDIDATES {
            let en = &self.entries[e as usize - 1];
            if en.hash == hash && en.kind == kind {
                tried += 1;
                if self.starts(b, en) {
                    let found = e as usize - 1;
                    self.remember(hash, found);
                    return Some(found);
                }
            }
            e = en.next;
        }
        None
    }

    /// Whether `b` starts with the text of `en` (its cut-out labels compared against their entry).
    #[inline(always)]
    fn starts(&self, b: &[u8], en: &Entry) -> bool {
        let len = en.len as usize;
        if len > b.len() {
            return false;
        }
        let off = en.off as usize;
        if en.lab == 0 {
            return same(&b[..len], &self.arena[off..off + len]);
        }
        let lab = &self.entries[en.lab as usize - 1];
        let (lo, ll) = (lab.off as usize, lab.len as usize);
        let split = en.split as usize;
        // The part after the labels first: endpoints of one workload's pods share everything up to
        // and including their labels, and differ in the pod name after them.
        same(&b[split + ll..len], &self.arena[off + split..off + len - ll])
            && same(&b[..split], &self.arena[off..off + split])
            && same(&b[split..split + ll], &self.arena[lo..lo + ll])
    }

    fn remember(&mut self, hash: u32, entry: usize) {
        self.recent[self.recent_at] = (hash, entry as u32 + 1);
        self.recent_at = (self.recent_at + 1) % RECENT;
    }

    /// The id of address bytes `ip` seen with the endpoint entry `ep`: from the entry when it is the
    /// address it saw last, else from the string table (and then kept on the entry).
    fn endpoint_ip(&mut self, ep: usize, ip: &[u8]) -> u32 {
        let en = &self.entries[ep];
        if en.ip_len as usize == ip.len() && same(&en.ip[..ip.len()], ip) {
            return en.ip_id;
        }
        let id = self.intern(KIND_STR, ip);
        if ip.len() <= IP_INLINE {
            let en = &mut self.entries[ep];
            en.ip_id = id;
            en.ip_len = ip.len() as u32;
            en.ip[..ip.len()].copy_from_slice(ip);
        }
        id
    }
}

/// Byte equality of two slices of the same length: 16 bytes at a time, the last (partial) step and
/// short slices by overlapping loads (no call to `memcmp`, which is a byte loop in WebAssembly).
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    assert!(b.len() == n);
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    // SAFETY: every load below reads bytes [k, k + width) with k + width <= n, of both slices.
    unsafe {
        if n >= 16 {
            let eq16 = |k: usize| {
                let (x, y) = (v128_load(pa.add(k) as *const v128), v128_load(pb.add(k) as *const v128));
                i8x16_all_true(i8x16_eq(x, y))
            };
            let mut i = 0;
            while i + 16 <= n {
                if !eq16(i) {
                    return false;
                }
                i += 16;
            }
            return i == n || eq16(n - 16);
        }
        if n >= 8 {
            let w = |p: *const u8, k: usize| (p.add(k) as *const u64).read_unaligned();
            return w(pa, 0) == w(pb, 0) && w(pa, n - 8) == w(pb, n - 8);
        }
        if n >= 4 {
            let w = |p: *const u8, k: usize| (p.add(k) as *const u32).read_unaligned();
            return w(pa, 0) == w(pb, 0) && w(pa, n - 4) == w(pb, n - 4);
        }
        n == 0 || (*pa == *pb && *pa.add(n / 2) == *pb.add(n / 2) && *pa.add(n - 1) == *pb.add(n - 1))
    }
}

/// Hash of a sub-object's first bytes: up to and including the first `}` or `]`, at most PREFIX
/// bytes. The rule reads only bytes of the value itself (a value ends with `}` or `]`), so the same
/// value hashes the same wherever it appears.
fn prefix_hash(b: &[u8]) -> u32 {
    let mut n = b.len().min(PREFIX);
    if n == PREFIX {
        // SAFETY: PREFIX (32) bytes are in b.
        let (x, y) = unsafe { (v128_load(b.as_ptr() as *const v128), v128_load(b.as_ptr().add(16) as *const v128)) };
        let close = |v: v128| i8x16_bitmask(v128_or(i8x16_eq(v, i8x16_splat(b'}' as i8)), i8x16_eq(v, i8x16_splat(b']' as i8))));
        let bits = close(x) as u32 | (close(y) as u32) << 16;
        if bits != 0 {
            n = bits.trailing_zeros() as usize + 1;
        }
    } else if let Some(i) = b[..n].iter().position(|&c| c == b'}' || c == b']') {
        n = i + 1;
    }
    hash(&b[..n])
}

const NONE: u32 = u32::MAX;

/// Where an endpoint object's remembered text starts, from its `{`: after a leading `"ID":n,` member
/// (n a JSON integer, followed by another member), else after the `{`.
///
/// Hubble writes the numeric endpoint ID only when the endpoint is local to the node that observed the
/// flow, so each pod's endpoint comes in two texts that differ only by it. Nothing reads the ID, so both
/// texts give the same fields: remembering them as one halves the endpoints remembered. Exact: with the
/// `"` of the next member required, `{"ID":n,` + rest is valid JSON exactly when `{` + rest is.
fn endpoint_key(b: &[u8]) -> usize {
    const ID: &[u8] = b"{\"ID\":";
    if b.len() < ID.len() + 3 || !same(&b[..ID.len()], ID) {
        return 1;
    }
    let mut i = ID.len();
    if b[i] == b'-' {
        i += 1;
    }
    match b[i] {
        b'0' => i += 1,
        b'1'..=b'9' => {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
        _ => return 1,
    }
    if i + 1 < b.len() && b[i] == b',' && b[i + 1] == b'"' {
        i + 1
    } else {
        1
    }
}

/// The fields of an endpoint object being scanned for the first time.
struct Endpoint {
    namespace: u32,
    /// The pod name's place: its offset in the input while scanning, in the arena once remembered.
    pod: u32,
    pod_len: u32,
    identity: u32,
    has_identity: u32,
    workload_name: u32,
    workload_kind: u32,
    /// The interned `labels` array (its whole text), NONE when absent.
    labels: u32,
    /// Where that array's text is in the input, and its entry plus one (0: none).
    labels_at: usize,
    labels_end: usize,
    labels_entry: u32,
    /// Scratch for the words pushed with the new endpoint.
    words: Vec<u32>,
}

impl Endpoint {
    const fn new() -> Self {
        Endpoint {
            namespace: NONE,
            pod: NONE,
            pod_len: 0,
            identity: 0,
            has_identity: 0,
            workload_name: NONE,
            workload_kind: NONE,
            labels: NONE,
            labels_at: 0,
            labels_end: 0,
            labels_entry: 0,
            words: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.namespace = NONE;
        self.pod = NONE;
        self.pod_len = 0;
        self.identity = 0;
        self.has_identity = 0;
        self.workload_name = NONE;
        self.workload_kind = NONE;
        self.labels = NONE;
        self.labels_entry = 0;
    }

    /// The words JavaScript reads for a new endpoint: namespace, the pod name's arena offset, has
    /// identity, identity, workload name, workload kind, labels (ids and offsets, NONE when absent),
    /// the pod name's length. `pod` is its arena offset by then (see `text_slot`).
    fn words(&mut self) -> &[u32] {
        self.words.clear();
        self.words.extend_from_slice(&[
            self.namespace,
            self.pod,
            self.has_identity,
            self.identity,
            self.workload_name,
            self.workload_kind,
            self.labels,
            self.pod_len,
        ]);
        &self.words
    }
}

/// Reads 8 bytes at `i` (the input keeps PAD bytes after its end, so keys near the end are safe).
#[inline(always)]
fn word(b: &[u8], i: usize) -> u64 {
    debug_assert!(i + 8 <= b.len());
    // SAFETY: keys end before the input's length and PAD (64) bytes follow it.
    unsafe { (b.as_ptr().add(i) as *const u64).read_unaligned() }
}

/// The literal's bytes from `i` as a little-endian word, zero past its end.
#[inline(always)]
const fn lit_word(lit: &[u8], i: usize) -> u64 {
    let mut w = 0u64;
    let mut k = 0;
    while k < 8 && i + k < lit.len() {
        w |= (lit[i + k] as u64) << (8 * k);
        k += 1;
    }
    w
}

/// True when the key b[ks, ke) is `lit`: compared a word at a time, without a memcmp call.
#[inline(always)]
fn is_key(b: &[u8], ks: usize, ke: usize, lit: &[u8]) -> bool {
    let n = lit.len();
    if ke - ks != n {
        return false;
    }
    if n < 8 {
        let mask = (1u64 << (8 * n)) - 1;
        return word(b, ks) & mask == lit_word(lit, 0);
    }
    let mut i = 0;
    while i + 8 <= n {
        if word(b, ks + i) != lit_word(lit, i) {
            return false;
        }
        i += 8;
    }
    i == n || word(b, ks + n - 8) == lit_word(lit, n - 8)
}

/// `match` on a key's bytes, compared with is_key:
/// `on_key!(b, ks, ke, { b"a" | b"b" => x, b"c" if guard => z, _ => y })`.
macro_rules! on_key {
    ($b:expr, $ks:expr, $ke:expr, { $($lit:literal $(| $more:literal)* $(if $guard:expr)? => $body:expr,)* _ => $default:expr $(,)? }) => {{
        let (b, ks, ke) = ($b, $ks, $ke);
        $( if (is_key(b, ks, ke, $lit) $(|| is_key(b, ks, ke, $more))*) $(&& $guard)? { $body } else )* { $default }
    }};
}

struct Scanner<'a> {
    b: &'a [u8],
    t: &'a mut Tables,
    rec: [i32; SLOTS],
    ep: Endpoint,
    /// Byte spans of the flow's source and destination address strings ((0, 0): absent).
    ips: [(usize, usize); 2],
}

impl<'a> Scanner<'a> {
    #[inline(always)]
    fn at(&self, p: usize) -> u8 {
        // The block ends with '\n', which every loop stops at; 0 past the end also stops them.
        match self.b.get(p) {
            Some(&c) => c,
            None => 0,
        }
    }

    #[inline(always)]
    fn expect(&self, p: usize, c: u8) -> R<usize> {
        if self.at(p) == c { Ok(p + 1) } else { Err(()) }
    }

    /// From just after an opening quote to the closing quote's index.
    #[inline(always)]
    fn string_end(&self, mut p: usize) -> R<usize> {
        // 16 bytes at a time: the first quote, backslash, control or non-ASCII byte (signed < 0x20).
        let quote = i8x16_splat(b'"' as i8);
        let backslash = i8x16_splat(b'\\' as i8);
        let space = i8x16_splat(0x20);
        while p + 16 <= self.b.len() {
            // SAFETY: p + 16 <= b.len().
            let v = unsafe { v128_load(self.b.as_ptr().add(p) as *const v128) };
            let quotes = i8x16_bitmask(i8x16_eq(v, quote)) as u32;
            let bad = i8x16_bitmask(v128_or(i8x16_eq(v, backslash), i8x16_lt(v, space))) as u32;
            if (quotes | bad) != 0 {
                // The first stop is a quote exactly when no bad byte comes before the first quote (from
                // the masks: no load of the byte found).
                let first = quotes & quotes.wrapping_neg();
                return if first != 0 && bad & (first - 1) == 0 { Ok(p + quotes.trailing_zeros() as usize) } else { Err(()) };
            }
            p += 16;
        }
        loop {
            match CLASS[self.at(p) as usize] {
                0 => p += 1,
                1 => return Ok(p),
                _ => return Err(()),
            }
        }
    }

    fn literal(&self, p: usize, lit: &[u8]) -> R<usize> {
        let e = p + lit.len();
        if e <= self.b.len() && same(&self.b[p..e], lit) { Ok(e) } else { Err(()) }
    }

    fn digits(&self, mut p: usize) -> usize {
        while self.at(p).is_ascii_digit() {
            p += 1;
        }
        p
    }

    /// A JSON number (validated, value not needed).
    fn number(&self, mut p: usize) -> R<usize> {
        if self.at(p) == b'-' {
            p += 1;
        }
        match self.at(p) {
            b'0' => p += 1,
            b'1'..=b'9' => p = self.digits(p + 1),
            _ => return Err(()),
        }
        if self.at(p) == b'.' {
            if !self.at(p + 1).is_ascii_digit() {
                return Err(());
            }
            p = self.digits(p + 1);
        }
        if matches!(self.at(p), b'e' | b'E') {
            p += 1;
            if matches!(self.at(p), b'+' | b'-') {
                p += 1;
            }
            if !self.at(p).is_ascii_digit() {
                return Err(());
            }
            p = self.digits(p);
        }
        Ok(p)
    }

    /// Validates any JSON value (without whitespace) and returns its end.
    fn skip(&self, p: usize, depth: u32) -> R<usize> {
        if depth > MAX_DEPTH {
            return Err(());
        }
        match self.at(p) {
            b'"' => Ok(self.string_end(p + 1)? + 1),
            b'{' => {
                let mut p = p + 1;
                if self.at(p) == b'}' {
                    return Ok(p + 1);
                }
                loop {
                    p = self.expect(p, b'"')?;
                    p = self.string_end(p)? + 1;
                    p = self.expect(p, b':')?;
                    p = self.skip(p, depth + 1)?;
                    match self.at(p) {
                        b',' => p += 1,
                        b'}' => return Ok(p + 1),
                        _ => return Err(()),
                    }
                }
            }
            b'[' => {
                let mut p = p + 1;
                if self.at(p) == b']' {
                    return Ok(p + 1);
                }
                loop {
                    p = self.skip(p, depth + 1)?;
                    match self.at(p) {
                        b',' => p += 1,
                        b']' => return Ok(p + 1),
                        _ => return Err(()),
                    }
                }
            }
            b't' => self.literal(p, b"true"),
            b'f' => self.literal(p, b"false"),
            b'n' => self.literal(p, b"null"),
            b'-' | b'0'..=b'9' => self.number(p),
            _ => Err(()),
        }
    }

    /// A key and its colon: (start, end) of the key text and the position after the colon.
    #[inline(always)]
    fn key(&self, p: usize) -> R<(usize, usize, usize)> {
        let s = self.expect(p, b'"')?;
        let e = self.string_end(s)?;
        let after = self.expect(e + 1, b':')?;
        Ok((s, e, after))
    }

    /// After a member: Ok(true) when another follows (',' consumed), Ok(false) at `close`.
    #[inline(always)]
    fn more(&self, p: &mut usize, close: u8) -> R<bool> {
        let c = self.at(*p);
        *p += 1;
        if c == b',' {
            Ok(true)
        } else if c == close {
            Ok(false)
        } else {
            Err(())
        }
    }

    /// Opens an object; Ok(false) when it is empty (and consumed).
    fn open(&self, p: &mut usize) -> R<bool> {
        *p = self.expect(*p, b'{')?;
        if self.at(*p) == b'}' {
            *p += 1;
            return Ok(false);
        }
        Ok(true)
    }

    /// A plain non-negative integer no larger than `max` (no sign, fraction, exponent, leading zero).
    fn uint(&self, p: usize, max: u32) -> R<(u32, usize)> {
        let e = self.digits(p);
        let n = e - p;
        if n == 0 || n > 10 || (n > 1 && self.at(p) == b'0') || matches!(self.at(e), b'.' | b'e' | b'E') {
            return Err(());
        }
        let mut v: u64 = 0;
        for &c in &self.b[p..e] {
            v = v * 10 + (c - b'0') as u64;
        }
        if v > max as u64 {
            return Err(());
        }
        Ok((v as u32, e))
    }

    fn boolean(&self, p: usize) -> R<(u32, usize)> {
        match self.at(p) {
            b't' => Ok((1, self.literal(p, b"true")?)),
            b'f' => Ok((0, self.literal(p, b"false")?)),
            _ => Err(()),
        }
    }

    /// A string value interned as KIND_STR into `slot`.
    fn str_slot(&mut self, p: usize, slot: usize) -> R<usize> {
        let s = self.expect(p, b'"')?;
        let e = self.string_end(s)?;
        self.rec[slot] = self.t.intern_slot(slot, KIND_STR, &self.b[s..e]) as i32;
        Ok(e + 1)
    }

    /// A sub-object or list of `kind` (opening with `open`) interned by its whole text into `slot`.
    /// Returns the position after the value and its entry's index.
    fn text_slot(&mut self, p: usize, slot: usize, kind: u32, open: u8) -> R<(usize, usize)> {
        if self.at(p) != open {
            return Err(());
        }
        let b = self.b;
        // Endpoints are remembered without their leading `"ID":n,` member (see endpoint_key).
        let k = if kind == KIND_EP { p + endpoint_key(&b[p..]) } else { p };
        let rest = &b[k..];
        let h = prefix_hash(rest);
        if let Some(found) = self.t.find_text(kind, h, rest) {
            let en = &self.t.entries[found];
            self.rec[slot] = en.id as i32;
            return Ok((k + en.len as usize, found));
        }
        let (id, e) = if kind == KIND_EP {
            // The whole object is validated and read, `ID` included.
            let e = self.endpoint(p)?;
            // Its labels array's text stays in the labels entry only (the array is inside the key).
            let (cut, cut_len, lab) = if self.ep.labels_entry != 0 && self.ep.labels_at >= k {
                (self.ep.labels_at - k, self.ep.labels_end - self.ep.labels_at, self.ep.labels_entry)
            } else {
                (0, 0, 0)
            };
            if self.ep.pod != NONE {
                // Where the name will be in the arena: the entry's text starts at k, without its
                // labels array's bytes. (A pod name before `k`, inside a leading `"ID"` member,
                // cannot be: that member holds a number.)
                let at = self.ep.pod as usize - k;
                let arena_at = if lab != 0 && at >= cut + cut_len { at - cut_len } else { at };
                self.ep.pod = (self.t.arena.len() + arena_at) as u32;
            }
            let words = self.ep.words();
            (self.t.insert_cut(kind, h, &b[k..e], cut, cut_len, lab, words), e)
        } else {
            let e = self.skip(p, 1)?;
            (self.t.insert(kind, h, &b[p..e], &[]), e)
        };
        self.t.remember(h, self.t.last);
        self.rec[slot] = id as i32;
        Ok((e, self.t.last))
    }

    /// A string value interned as `kind`: its id and the position after it.
    fn string_id(&mut self, p: usize, kind: u32) -> R<(u32, usize)> {
        let s = self.expect(p, b'"')?;
        let e = self.string_end(s)?;
        let b = self.b;
        Ok((self.t.intern(kind, &b[s..e]), e + 1))
    }

    /// Scans the object at `p`, calling `member(self, key start, key end, value position)` for each
    /// member, which returns the position after the value. Returns the position after the object and
    /// whether it had any member.
    #[inline(always)]
    fn object(
        &mut self,
        p: usize,
        mut member: impl FnMut(&mut Self, usize, usize, usize) -> R<usize>,
    ) -> R<(usize, bool)> {
        let mut p = p;
        if !self.open(&mut p)? {
            return Ok((p, false));
        }
        loop {
            let (ks, ke, after) = self.key(p)?;
            p = member(self, ks, ke, after)?;
            if !self.more(&mut p, b'}')? {
                return Ok((p, true));
            }
        }
    }

    /// Like `object`, for objects whose emptiness does not matter.
    #[inline(always)]
    fn members(&mut self, p: usize, member: impl FnMut(&mut Self, usize, usize, usize) -> R<usize>) -> R<usize> {
        Ok(self.object(p, member)?.0)
    }

    /// A value written into a record slot from `read` (which returns it and the position after it).
    #[inline(always)]
    fn slot(&mut self, slot: usize, read: R<(u32, usize)>) -> R<usize> {
        let (v, e) = read?;
        self.rec[slot] = v as i32;
        Ok(e)
    }

    /// An endpoint object seen for the first time: validated, its fields read into `self.ep`.
    fn endpoint(&mut self, p: usize) -> R<usize> {
        self.ep.clear();
        self.members(p, |s, ks, ke, p| {
            on_key!(s.b, ks, ke, {
                b"namespace" => {
                    let (id, e) = s.string_id(p, KIND_STR)?;
                    s.ep.namespace = id;
                    Ok(e)
                },
                b"pod_name" => {
                    // Not interned: a pod's name is in few endpoint texts, so JavaScript reads it from
                    // the endpoint's own remembered bytes.
                    let start = s.expect(p, b'"')?;
                    let e = s.string_end(start)?;
                    s.ep.pod = start as u32;
                    s.ep.pod_len = (e - start) as u32;
                    Ok(e + 1)
                },
                b"identity" => {
                    let (v, e) = s.uint(p, u32::MAX)?;
                    s.ep.identity = v;
                    s.ep.has_identity = 1;
                    Ok(e)
                },
                b"labels" => {
                    // An array of strings, interned whole: pods of one workload share it. A
                    // repeated key: the last value wins, as with JSON.parse.
                    let start = p;
                    let mut p = s.expect(p, b'[')?;
                    if s.at(p) == b']' {
                        p += 1;
                    } else {
                        loop {
                            p = s.string_end(s.expect(p, b'"')?)? + 1;
                            if !s.more(&mut p, b']')? {
                                break;
                            }
                        }
                    }
                    let b = s.b;
                    s.ep.labels = s.t.intern(KIND_LABELS, &b[start..p]);
                    s.ep.labels_at = start;
                    s.ep.labels_end = p;
                    s.ep.labels_entry = s.t.found as u32 + 1;
                    Ok(p)
                },
                b"workloads" => {
                    s.ep.workload_name = NONE;
                    s.ep.workload_kind = NONE;
                    s.workloads(p)
                },
                _ => s.skip(p, 2),
            })
        })
    }

    /// `workloads`: the first element's name and kind are read, the others validated.
    fn workloads(&mut self, p: usize) -> R<usize> {
        let mut p = self.expect(p, b'[')?;
        if self.at(p) == b']' {
            return Ok(p + 1);
        }
        p = self.members(p, |s, ks, ke, p| {
            on_key!(s.b, ks, ke, {
                b"name" => {
                    let (id, e) = s.string_id(p, KIND_STR)?;
                    s.ep.workload_name = id;
                    Ok(e)
                },
                b"kind" => {
                    let (id, e) = s.string_id(p, KIND_STR)?;
                    s.ep.workload_kind = id;
                    Ok(e)
                },
                _ => s.skip(p, 4),
            })
        })?;
        while self.more(&mut p, b']')? {
            p = self.skip(p, 3)?;
        }
        Ok(p)
    }

    /// The flow's time text b[s, e): its place in the block and, for the shape Hubble writes,
    /// `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`, the hour prefix's id and the milliseconds within the hour
    /// (the same arithmetic as parseHubbleTime; a leap second counts as second 59).
    fn time(&mut self, s: usize, e: usize) {
        self.rec[S_TIME_AT] = s as i32;
        self.rec[S_TIME_LEN] = (e - s) as i32;
        self.rec[S_HOUR] = -1;
        let _ = self.hour_time(s, e);
    }

    fn hour_time(&mut self, s: usize, e: usize) -> R<()> {
        let n = e - s;
        let b = &self.b[s..e];
        if !(20..=30).contains(&n) || b[n - 1] != b'Z' || b[13] != b':' || b[16] != b':' {
            return Err(());
        }
        let d = |i: usize| b[i].wrapping_sub(b'0') as u32;
        let (m1, m2, s1, s2) = (d(14), d(15), d(17), d(18));
        if m1 > 5 || m2 > 9 || s1 > 6 || s2 > 9 || (s1 == 6 && s2 != 0) {
            return Err(());
        }
        let mut ms: u32 = 0;
        if n > 20 {
            if b[19] != b'.' || n == 21 {
                return Err(());
            }
            for i in 20..n - 1 {
                let x = d(i);
                if x > 9 {
                    return Err(());
                }
                if i < 23 {
                    ms = ms * 10 + x;
                }
            }
            if n == 22 {
                ms *= 100;
            } else if n == 23 {
                ms *= 10;
            }
        } else if b[19] != b'Z' {
            return Err(());
        }
        let sec = if s1 == 6 { 59 } else { s1 * 10 + s2 };
        self.rec[S_HOUR] = self.t.intern_slot(S_HOUR, KIND_HOUR, &b[..13]) as i32;
        self.rec[S_MS] = ((m1 * 10 + m2) * 60_000 + sec * 1000 + ms) as i32;
        Ok(())
    }

    /// The envelope: `flow` scanned, `time` checked as a string, other members skipped.
    fn line(&mut self, p: usize) -> R<usize> {
        let mut flow = false;
        let (p, any) = self.object(p, |s, ks, ke, p| {
            on_key!(s.b, ks, ke, {
                b"flow" => {
                    if flow {
                        return Err(());
                    }
                    flow = true;
                    s.flow(p)
                },
                b"time" => {
                    let start = s.expect(p, b'"')?;
                    let e = s.string_end(start)?;
                    s.rec[S_ENV_TIME_AT] = start as i32;
                    s.rec[S_ENV_TIME_LEN] = (e - start) as i32;
                    Ok(e + 1)
                },
                b"node_status" | b"lost_events" | b"agent_event" | b"debug_event" => Err(()),
                _ => s.skip(p, 1),
            })
        })?;
        if !any || !flow {
            return Err(());
        }
        Ok(p)
    }

    fn flow(&mut self, p: usize) -> R<usize> {
        let mut seen: u32 = 0;
        let mut once = move |bit: u32| -> R<()> {
            if seen & bit != 0 {
                return Err(());
            }
            seen |= bit;
            Ok(())
        };
        let mut src_entry = usize::MAX;
        let mut dst_entry = usize::MAX;
        self.ips = [(0, 0); 2];
        let (p, any) = self.object(p, |s, ks, ke, p| {
            on_key!(s.b, ks, ke, {
                b"time" => {
                    let start = s.expect(p, b'"')?;
                    let e = s.string_end(start)?;
                    s.time(start, e);
                    Ok(e + 1)
                },
                b"verdict" => s.enum_slot(p, S_VERDICT),
                b"drop_reason_desc" => s.enum_slot(p, S_DROP),
                b"trace_reason" => s.enum_slot(p, S_TRACE),
                b"IP" => {
                    once(1)?;
                    s.ip(p)
                },
                b"l4" => {
                    once(2)?;
                    s.l4(p)
                },
                b"source" => {
                    once(4)?;
                    let (e, entry) = s.text_slot(p, S_SRC_EP, KIND_EP, b'{')?;
                    src_entry = entry;
                    Ok(e)
                },
                b"destination" => {
                    once(8)?;
                    let (e, entry) = s.text_slot(p, S_DST_EP, KIND_EP, b'{')?;
                    dst_entry = entry;
                    Ok(e)
                },
                b"source_names" => {
                    once(16)?;
                    Ok(s.text_slot(p, S_SRC_NAMES, KIND_NAMES, b'[')?.0)
                },
                b"destination_names" => {
                    once(32)?;
                    Ok(s.text_slot(p, S_DST_NAMES, KIND_NAMES, b'[')?.0)
                },
                b"source_service" => {
                    once(64)?;
                    Ok(s.text_slot(p, S_SRC_SVC, KIND_SVC, b'{')?.0)
                },
                b"destination_service" => {
                    once(128)?;
                    Ok(s.text_slot(p, S_DST_SVC, KIND_SVC, b'{')?.0)
                },
                b"reply" => s.slot(S_REPLY, s.boolean(p)),
                b"is_reply" => s.slot(S_IS_REPLY, s.boolean(p)),
                b"l7" => {
                    once(256)?;
                    s.l7(p)
                },
                _ => s.skip(p, 1),
            })
        })?;
        if !any {
            return Err(());
        }
        // Addresses last: an endpoint's entry knows the address it came with last time.
        for (i, entry) in [src_entry, dst_entry].into_iter().enumerate() {
            let (s, e) = self.ips[i];
            if e == 0 {
                continue;
            }
            let b = self.b;
            let ip = &b[s..e];
            let id = if entry == usize::MAX { self.t.intern(KIND_STR, ip) } else { self.t.endpoint_ip(entry, ip) };
            self.rec[if i == 0 { S_SRC_IP } else { S_DST_IP }] = id as i32;
        }
        Ok(p)
    }

    /// An address string: its bytes' place, interned once the flow's endpoints are known.
    fn ip_span(&mut self, p: usize, i: usize) -> R<usize> {
        let s = self.expect(p, b'"')?;
        let e = self.string_end(s)?;
        self.ips[i] = (s, e);
        Ok(e + 1)
    }

    /// An enum: a name (interned, id >= 0) or a number n (as -2 - n).
    fn enum_slot(&mut self, p: usize, slot: usize) -> R<usize> {
        if self.at(p) == b'"' {
            return self.str_slot(p, slot);
        }
        let (v, e) = self.uint(p, MAX_ENUM_NUMBER)?;
        self.rec[slot] = -2 - v as i32;
        Ok(e)
    }

    /// `l7`: its type and the DNS query name; the rest is validated.
    fn l7(&mut self, p: usize) -> R<usize> {
        let mut dns = false;
        self.members(p, |s, ks, ke, p| {
            on_key!(s.b, ks, ke, {
                b"type" => s.enum_slot(p, S_L7_TYPE),
                b"dns" => {
                    if dns {
                        return Err(());
                    }
                    dns = true;
                    s.members(p, |s, ks, ke, p| {
                        on_key!(s.b, ks, ke, {
                            b"query" => s.str_slot(p, S_DNS_QUERY),
                            _ => s.skip(p, 4),
                        })
                    })
                },
                _ => s.skip(p, 3),
            })
        })
    }

    fn ip(&mut self, p: usize) -> R<usize> {
        self.members(p, |s, ks, ke, p| {
            on_key!(s.b, ks, ke, {
                b"source" => s.ip_span(p, 0),
                b"destination" => s.ip_span(p, 1),
                _ => s.skip(p, 2),
            })
        })
    }

    fn l4(&mut self, p: usize) -> R<usize> {
        self.members(p, |s, ks, ke, p| {
            if is_key(s.b, ks, ke, b"protocol") || s.rec[S_L4] >= 0 {
                return Err(());
            }
            let b = s.b;
            s.rec[S_L4] = s.t.intern_slot(S_L4, KIND_STR, &b[ks..ke]) as i32;
            // Only what the JSON.parse path reads for this protocol; other protocols are validated.
            on_key!(s.b, ks, ke, {
                b"TCP" => s.l4_member(p, true, true, false),
                b"UDP" | b"SCTP" => s.l4_member(p, true, false, false),
                b"ICMPv4" | b"ICMPv6" => s.l4_member(p, false, false, true),
                _ => {
                    if s.at(p) != b'{' {
                        return Err(());
                    }
                    s.skip(p, 2)
                },
            })
        })
    }

    fn l4_member(&mut self, p: usize, ports: bool, tcp: bool, icmp: bool) -> R<usize> {
        let mut flags = false;
        self.members(p, |s, ks, ke, p| {
            on_key!(s.b, ks, ke, {
                b"source_port" if ports => s.slot(S_SPORT, s.uint(p, 65535)),
                b"destination_port" if ports => s.slot(S_DPORT, s.uint(p, 65535)),
                b"type" if icmp => s.slot(S_ICMP, s.uint(p, 255)),
                b"flags" if tcp => {
                    if flags {
                        return Err(());
                    }
                    flags = true;
                    s.members(p, |s, ks, ke, p| {
                        on_key!(s.b, ks, ke, {
                            b"SYN" => s.slot(S_SYN, s.boolean(p)),
                            b"ACK" => s.slot(S_ACK, s.boolean(p)),
                            _ => s.skip(p, 5),
                        })
                    })
                },
                _ => s.skip(p, 3),
            })
        })
    }
}

/// Makes the input buffer hold at least `capacity` bytes; returns its address.
#[unsafe(no_mangle)]
pub extern "C" fn input(capacity: u32) -> u32 {
    let s = state();
    if s.input.len() < capacity as usize + PAD {
        s.input.resize(capacity as usize + PAD, 0);
    }
    s.input.as_ptr() as u32
}

/// Scans input[0, len), whole lines each ended by '\n'; returns the number of line records written.
#[unsafe(no_mangle)]
pub extern "C" fn scan(len: u32) -> u32 {
    let State { input, out, tables } = state();
    let len = (len as usize).min(input.len().saturating_sub(PAD));
    input[len..len + PAD].fill(0);
    let b = &input[..len + PAD];
    out.clear();
    tables.news.clear();
    let mut sc = Scanner { b, t: tables, rec: [-1; SLOTS], ep: Endpoint::new(), ips: [(0, 0); 2] };
    let mut p = 0;
    let mut lines = 0;
    while p < len {
        sc.rec = [-1; SLOTS];
        sc.rec[S_START] = p as i32;
        let end = match sc.line(p) {
            Ok(e) if e < len && b[e] == b'\n' => {
                sc.rec[S_STATUS] = OK;
                e
            }
            _ => {
                sc.rec[S_STATUS] = SLOW;
                match b[p..len].iter().position(|&c| c == b'\n') {
                    Some(i) => p + i,
                    None => len,
                }
            }
        };
        sc.rec[S_END] = end as i32;
        out.extend_from_slice(&sc.rec);
        lines += 1;
        p = end + 1;
    }
    lines
}

/// Address of the line records written by the last scan.
#[unsafe(no_mangle)]
pub extern "C" fn records() -> u32 {
    state().out.as_ptr() as u32
}

/// Address of the new values of the last scan: (kind, id, arena offset, length, n, n words) each.
#[unsafe(no_mangle)]
pub extern "C" fn news() -> u32 {
    state().tables.news.as_ptr() as u32
}

/// Length in 32-bit words of the new values of the last scan.
#[unsafe(no_mangle)]
pub extern "C" fn news_count() -> u32 {
    state().tables.news.len() as u32
}

/// Address of the arena holding the bytes of every interned value.
#[unsafe(no_mangle)]
pub extern "C" fn arena() -> u32 {
    state().tables.arena.as_ptr() as u32
}

/// Bytes held by the arena.
#[unsafe(no_mangle)]
pub extern "C" fn arena_size() -> u32 {
    state().tables.arena.len() as u32
}

/// Forgets every interned value (ids start again from 0).
#[unsafe(no_mangle)]
pub extern "C" fn reset() {
    let t = &mut state().tables;
    // Cleared, not freed: their memory is reused (linear memory never shrinks anyway).
    t.arena.clear();
    t.entries.clear();
    t.buckets.fill(0);
    t.counts = [0; KINDS];
    t.recent = [(0, 0); RECENT];
    t.by_slot = [[(0, 0); SLOT_VALUES]; SLOTS];
    t.recent_at = 0;
    t.news.clear();
}

/// Slots per line record (for the JavaScript side to check its layout against).
#[unsafe(no_mangle)]
pub extern "C" fn slots() -> u32 {
    SLOTS as u32
}
