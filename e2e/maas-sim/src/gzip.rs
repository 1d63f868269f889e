//! gzip decoding (RFC 1952 around RFC 1951 DEFLATE), for the `gz` encodings of cloud-config
//! `write_files`. Small and strict: one member, checked against its CRC-32 and size; anything
//! else (junk, truncation, an output past [`MAX_OUTPUT`]) is `None`.

/// The most bytes a decoded file may have: user data is small, a bomb is not.
pub const MAX_OUTPUT: usize = 16 << 20;

/// Decodes one gzip member.
pub fn gunzip(data: &[u8]) -> Option<Vec<u8>> {
    let body = skip_header(data)?;
    let mut bits = Bits::new(body);
    let out = inflate(&mut bits)?;
    let trailer = body.get(bits.pos..bits.pos + 8)?;
    let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
    (crc == crc32(&out) && size == out.len() as u32).then_some(out)
}

/// The DEFLATE stream after the gzip header.
fn skip_header(data: &[u8]) -> Option<&[u8]> {
    const FHCRC: u8 = 2;
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    let (head, mut rest) = (data.get(..10)?, data.get(10..)?);
    if head[..3] != [0x1f, 0x8b, 8] {
        return None;
    }
    let flags = head[3];
    if flags & FEXTRA != 0 {
        let len = usize::from(u16::from_le_bytes([*rest.first()?, *rest.get(1)?]));
        rest = rest.get(2 + len..)?;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let end = rest.iter().position(|b| *b == 0)?;
            rest = rest.get(end + 1..)?;
        }
    }
    if flags & FHCRC != 0 {
        rest = rest.get(2..)?;
    }
    Some(rest)
}

/// CRC-32 (IEEE, reflected), as gzip's trailer carries it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A DEFLATE bit reader: least significant bit first.
struct Bits<'a> {
    data: &'a [u8],
    /// The next byte to load.
    pos: usize,
    buffer: u32,
    count: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            buffer: 0,
            count: 0,
        }
    }

    /// The next `n` (at most 16) bits.
    fn take(&mut self, n: u32) -> Option<u32> {
        while self.count < n {
            let byte = *self.data.get(self.pos)?;
            self.pos += 1;
            self.buffer |= u32::from(byte) << self.count;
            self.count += 8;
        }
        let value = self.buffer & ((1u32 << n) - 1);
        self.buffer >>= n;
        self.count -= n;
        Some(value)
    }

    /// Drops the bits left of the current byte (stored blocks start on a byte).
    fn align(&mut self) {
        self.buffer = 0;
        self.count = 0;
    }
}

/// A canonical Huffman code: how many codes of each length, and the symbols in code order.
struct Huffman {
    counts: [u16; 16],
    symbols: Vec<u16>,
}

impl Huffman {
    /// The code of `lengths` (one per symbol, 0 for unused); `None` when over-subscribed.
    fn new(lengths: &[u8]) -> Option<Self> {
        let mut counts = [0u16; 16];
        for len in lengths {
            counts[usize::from(*len)] += 1;
        }
        counts[0] = 0;
        let mut left: i32 = 1;
        for count in &counts[1..] {
            left = (left << 1) - i32::from(*count);
            if left < 0 {
                return None;
            }
        }
        let mut offsets = [0u16; 16];
        for len in 1..15 {
            offsets[len + 1] = offsets[len] + counts[len];
        }
        let mut symbols = vec![0u16; lengths.len()];
        for (symbol, len) in lengths.iter().enumerate() {
            if *len != 0 {
                let slot = &mut offsets[usize::from(*len)];
                *symbols.get_mut(usize::from(*slot))? = symbol as u16;
                *slot += 1;
            }
        }
        Some(Self { counts, symbols })
    }

    /// Reads one symbol.
    fn decode(&self, bits: &mut Bits) -> Option<u16> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for count in &self.counts[1..] {
            code |= bits.take(1)? as i32;
            let count = i32::from(*count);
            if code - first < count {
                return self.symbols.get((index + code - first) as usize).copied();
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        None
    }
}

/// Decodes DEFLATE blocks until the last one.
fn inflate(bits: &mut Bits) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let last = bits.take(1)? == 1;
        match bits.take(2)? {
            0 => stored(bits, &mut out)?,
            1 => {
                let (lit, dist) = fixed_codes()?;
                codes(bits, &mut out, &lit, &dist)?
            }
            2 => {
                let (lit, dist) = dynamic_codes(bits)?;
                codes(bits, &mut out, &lit, &dist)?
            }
            _ => return None,
        }
        if last {
            return Some(out);
        }
    }
}

/// A stored (uncompressed) block.
fn stored(bits: &mut Bits, out: &mut Vec<u8>) -> Option<()> {
    bits.align();
    let header = bits.data.get(bits.pos..bits.pos + 4)?;
    let len = u16::from_le_bytes([header[0], header[1]]);
    let nlen = u16::from_le_bytes([header[2], header[3]]);
    if len != !nlen {
        return None;
    }
    let start = bits.pos + 4;
    let block = bits.data.get(start..start + usize::from(len))?;
    if out.len() + block.len() > MAX_OUTPUT {
        return None;
    }
    out.extend_from_slice(block);
    bits.pos = start + usize::from(len);
    Some(())
}

/// The fixed literal/length and distance codes.
fn fixed_codes() -> Option<(Huffman, Huffman)> {
    let mut lengths = [8u8; 288];
    lengths[144..256].fill(9);
    lengths[256..280].fill(7);
    Some((Huffman::new(&lengths)?, Huffman::new(&[5u8; 30])?))
}

/// The codes a dynamic block describes in its header.
fn dynamic_codes(bits: &mut Bits) -> Option<(Huffman, Huffman)> {
    const ORDER: [usize; 19] = [
        16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
    ];
    let literals = bits.take(5)? as usize + 257;
    let distances = bits.take(5)? as usize + 1;
    let code_lengths = bits.take(4)? as usize + 4;
    if literals > 286 || distances > 30 {
        return None;
    }
    let mut header = [0u8; 19];
    for slot in &ORDER[..code_lengths] {
        header[*slot] = bits.take(3)? as u8;
    }
    let header = Huffman::new(&header)?;
    let mut lengths = Vec::with_capacity(literals + distances);
    while lengths.len() < literals + distances {
        let (value, repeat) = match header.decode(bits)? {
            symbol @ 0..=15 => (symbol as u8, 1),
            16 => (*lengths.last()?, 3 + bits.take(2)?),
            17 => (0, 3 + bits.take(3)?),
            18 => (0, 11 + bits.take(7)?),
            _ => return None,
        };
        if lengths.len() + repeat as usize > literals + distances {
            return None;
        }
        lengths.extend(std::iter::repeat_n(value, repeat as usize));
    }
    if lengths[256] == 0 {
        return None;
    }
    let (lit, dist) = lengths.split_at(literals);
    Some((Huffman::new(lit)?, Huffman::new(dist)?))
}

/// The literals and back-references of a compressed block, up to its end-of-block symbol.
fn codes(bits: &mut Bits, out: &mut Vec<u8>, lit: &Huffman, dist: &Huffman) -> Option<()> {
    const LENGTH_BASE: [u16; 29] = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
        131, 163, 195, 227, 258,
    ];
    const LENGTH_EXTRA: [u8; 29] = [
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
    ];
    const DIST_BASE: [u16; 30] = [
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
        2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
    ];
    const DIST_EXTRA: [u8; 30] = [
        0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
        13, 13,
    ];
    loop {
        let symbol = usize::from(lit.decode(bits)?);
        if symbol < 256 {
            out.push(symbol as u8);
        } else if symbol == 256 {
            return Some(());
        } else {
            let i = symbol - 257;
            let len = usize::from(*LENGTH_BASE.get(i)?)
                + bits.take(u32::from(*LENGTH_EXTRA.get(i)?))? as usize;
            let d = usize::from(dist.decode(bits)?);
            let back = usize::from(*DIST_BASE.get(d)?)
                + bits.take(u32::from(*DIST_EXTRA.get(d)?))? as usize;
            let from = out.len().checked_sub(back)?;
            for k in 0..len {
                out.push(out[from + k]);
            }
        }
        if out.len() > MAX_OUTPUT {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    fn decode(b64: &str) -> Option<Vec<u8>> {
        gunzip(&STANDARD.decode(b64).unwrap())
    }

    #[test]
    fn a_short_text_in_fixed_codes() {
        // Python's `gzip.compress(b"hello, kubelet\n", mtime=0)`.
        let out = decode("H4sIAAAAAAACA8tIzcnJ11HILk1KzUkt4QIAeSviTA8AAAA=").unwrap();
        assert_eq!(out, b"hello, kubelet\n");
    }

    #[test]
    fn a_longer_text_in_dynamic_codes_with_a_file_name() {
        let out = decode(DYNAMIC).unwrap();
        let want: String = (1..=300).map(|i| format!("{i}\n")).collect();
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn stored_blocks() {
        // Python's `gzip.compress(b"stored data", compresslevel=0, mtime=0)`.
        let out = decode("H4sIAAAAAAAEAwELAPT/c3RvcmVkIGRhdGERVdeZCwAAAA==").unwrap();
        assert_eq!(out, b"stored data");
    }

    #[test]
    fn junk_truncation_and_corruption_are_refused() {
        assert_eq!(gunzip(b""), None);
        assert_eq!(gunzip(b"not gzip at all"), None);
        let good = STANDARD
            .decode("H4sIAAAAAAACA8tIzcnJ11HILk1KzUkt4QIAeSviTA8AAAA=")
            .unwrap();
        for cut in 0..good.len() {
            assert_eq!(gunzip(&good[..cut]), None, "cut at {cut}");
        }
        let mut flipped = good.clone();
        flipped[14] ^= 0x40;
        assert_eq!(gunzip(&flipped), None);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    proptest::proptest! {
        /// Junk after a gzip header, and any byte of a real stream changed, never panic.
        #[test]
        fn junk_never_panics(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
                             at in 0usize..10_000, byte in proptest::num::u8::ANY) {
            let mut junk = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
            junk.extend(&tail);
            let _ = gunzip(&junk);
            let mut changed = STANDARD.decode(DYNAMIC).unwrap();
            let at = at % changed.len();
            changed[at] = byte;
            let _ = gunzip(&changed);
        }
    }

    /// Python's `gzip` of `seq 1 300`, the header naming the file `seq.txt`.
    const DYNAMIC: &str = concat!(
        "H4sICAAAAAAC/3NlcS50eHQAHdPLEQUhDAPBu6JBAgzkn9iO9+56n2lhRVNLW6WjqycP2XLkKS95yyUf+cpP",
        "GYqVKFNZylZKOcpVnubQtCYfOTWX5tYszaN5NZ/W0LJWtPjGpbW1SutoXa2nPbStHe2pzQ/a2qV9tK/2Uw2V",
        "VVFN1VLxe0t1VFf1dIaOdaIzdZbO1uHvHJ2r83SHrnWjO3WX7tYtXf7t1X16Q8960Zt6S2/rld7RI0bXIMeg",
        "xyDIoMggyaDJIMqgyiDL4O7Pxl2H63Kdrtt1vK7X+ehnAjrdlzsamoimosloOpqQpqRJaVp6NgR35DQ9TVBT",
        "1CQ1TU1UU9Vk9Wox7ihr0pq2Jq6pa/KaviawKezdtNwR2VQ2mU1nE9qUNqlNaxPb1Rvgjt4muClukpvmJrqp",
        "brKb7j49Fu5Ib9qb+Ka+yW/6GwAjYAh8e1XcoWAYjIOBMBKGwlgYDKPh1/Pr/TFAPIJH8AgewSN4BI/gETzi",
        "Hip3eASP4BE8gkfwCB7pPfeg/0Vz15vuUfeqe9a96x42HsEjeGT29LnDI3gEj+ARPIJH8AgewSOr3wh3eASP",
        "4BE8gkfwCB7BI3hk92PiDo/gETyCR/AIHsEjeASPVL867vAIHsEjeASP4BE8gkfwyOnnyR0ewSN4BI/gETyC",
        "R/AIHrn9jrnDI3gEj+ARPIJH8AgewSOvH3y/+KEPdgWkiEQEAAA=",
    );
}
