//! FID statistics as `.npz` files, the format of pytorch-fid's `--save-stats` (`np.savez(path, mu=mu,
//! sigma=sigma)`) and of its precomputed reference statistics (`np.load(path)['mu']`, `['sigma']`).
//!
//! An `.npz` is a zip archive of `.npy` files. We write `mu.npy` (float64, shape `(d,)`) and `sigma.npy`
//! (float64, `(d, d)`), stored uncompressed, each byte for byte what `np.save` writes (NPY 1.0, header padded
//! with spaces and a newline to a multiple of 64 bytes, numpy ≥ 1.23's growth room included); we read
//! stored or deflated archives with `<f8`/`<f4` (and big-endian) arrays in C or Fortran order.

use std::fs::File;
use std::io::{Cursor, Read, Write};
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use super::stats::Statistics;
use crate::error::{Error, Result};
use crate::fsio::write_atomic;

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// numpy's `ARRAY_ALIGN`: the header (preamble included) is padded to a multiple of this.
const ALIGN: usize = 64;
/// numpy's `GROWTH_AXIS_MAX_DIGITS`: header room left for the first axis to grow (`np.save` since 1.23).
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// Writes `stats` as an `.npz` holding `mu` and `sigma` (float64), atomically: to a temporary file beside
/// `path`, then renamed over it.
pub fn save_stats_npz(path: impl AsRef<Path>, stats: &Statistics) -> Result<()> {
    let path = path.as_ref();
    stats.validate()?;
    let d = stats.dims;
    let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Stored).large_file(
        // zip64 entries once an array passes 4 GiB (d > 23170): never for FID, but correct either way.
        (d * d * 8) as u64 >= u32::MAX as u64,
    );
    let zerr = |e: zip::result::ZipError| Error::format(path, format!("writing the zip archive: {e}"));
    let ioerr = |e: std::io::Error| Error::io(path, e);
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    zip.start_file("mu.npy", opts).map_err(zerr)?;
    zip.write_all(&npy_bytes(&stats.mu, &[d])).map_err(ioerr)?;
    zip.start_file("sigma.npy", opts).map_err(zerr)?;
    zip.write_all(&npy_bytes(&stats.sigma, &[d, d])).map_err(ioerr)?;
    let bytes = zip.finish().map_err(zerr)?.into_inner();
    write_atomic(path, &bytes)
}

/// Reads `mu` and `sigma` from an `.npz` (as written by numpy's `np.savez` or [`save_stats_npz`]). The sample
/// count is not stored in the file: `count` is 0.
pub fn load_stats_npz(path: impl AsRef<Path>) -> Result<Statistics> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut zip = ZipArchive::new(file).map_err(|e| Error::format(path, format!("not an .npz (a zip archive of .npy files): {e}")))?;
    let (mu, mu_shape) = read_array(path, &mut zip, "mu")?;
    let (sigma, sigma_shape) = read_array(path, &mut zip, "sigma")?;
    // pytorch-fid applies np.atleast_1d / np.atleast_2d: a 0-d mu or sigma is a 1-dimensional statistic.
    let d = match mu_shape.as_slice() {
        [] => 1,
        [d] => *d,
        other => return Err(Error::format(path, format!("`mu` has shape {other:?}; expected (d,)"))),
    };
    let sigma_ok = match sigma_shape.as_slice() {
        [] => d == 1,
        [r, c] => *r == d && *c == d,
        _ => false,
    };
    if !sigma_ok {
        return Err(Error::format(path, format!("`mu` has {d} values but `sigma` has shape {sigma_shape:?}; expected ({d}, {d})")));
    }
    let stats = Statistics { mu, sigma, dims: d, count: 0 };
    stats.validate().map_err(|e| Error::format(path, e.to_string()))?;
    Ok(stats)
}

/// An NPY 1.0 file of little-endian float64 values in C order.
fn npy_bytes(data: &[f64], shape: &[usize]) -> Vec<u8> {
    let shape_repr = match shape {
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape_repr}, }}");
    // numpy ≥ 1.23 first adds room for the growth axis to reach 21 digits (GROWTH_AXIS_MAX_DIGITS), then
    // padlen = ALIGN − ((10 + len(header) + 1) % ALIGN) spaces and the newline: byte-identical to `np.save`.
    if let Some(first) = shape.first() {
        header.extend(std::iter::repeat_n(' ', GROWTH_AXIS_MAX_DIGITS.saturating_sub(first.to_string().len())));
    }
    let pad = ALIGN - (MAGIC.len() + 4 + header.len() + 1) % ALIGN;
    header.extend(std::iter::repeat_n(' ', pad));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// The array `name` (`name.npy`, or a member named exactly `name`) as f64 values in C order, and its shape.
fn read_array<R: Read + std::io::Seek>(path: &Path, zip: &mut ZipArchive<R>, name: &str) -> Result<(Vec<f64>, Vec<usize>)> {
    let member = [format!("{name}.npy"), name.to_string()].into_iter().find(|m| zip.index_for_name(m).is_some());
    let Some(member) = member else {
        let have: Vec<&str> = zip.file_names().collect();
        return Err(Error::format(path, format!("no `{name}` array in the .npz (members: {have:?})")));
    };
    let mut bytes = Vec::new();
    zip.by_name(&member)
        .and_then(|mut f| f.read_to_end(&mut bytes).map_err(Into::into))
        .map_err(|e| Error::format(path, format!("reading `{member}`: {e}")))?;
    parse_npy(&bytes).map_err(|detail| Error::format(path, format!("`{member}`: {detail}")))
}

/// Parses an NPY file (versions 1–3) of float32/float64 values.
fn parse_npy(bytes: &[u8]) -> std::result::Result<(Vec<f64>, Vec<usize>), String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not an NPY array (bad magic)".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize, 12),
        v => return Err(format!("unsupported NPY version {v}.{}", bytes[7])),
    };
    let header =
        bytes.get(start..start + header_len).ok_or_else(|| format!("header of {header_len} bytes runs past the end of the file"))?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not text".to_string())?;
    let descr = dict_value(header, "descr")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let fortran = match dict_value(header, "fortran_order")? {
        "True" => true,
        "False" => false,
        other => return Err(format!("bad fortran_order {other:?}")),
    };
    let shape = parse_shape(dict_value(header, "shape")?)?;
    let (size, little) = match descr {
        "<f8" => (8, true),
        ">f8" => (8, false),
        "<f4" => (4, true),
        ">f4" => (4, false),
        other => return Err(format!("unsupported dtype {other:?} (expected float64 '<f8' or float32 '<f4')")),
    };
    let count: usize = shape.iter().product();
    let data = &bytes[start + header_len..];
    if data.len() < count * size {
        return Err(format!("shape {shape:?} of {descr} needs {} bytes of data, the file has {}", count * size, data.len()));
    }
    let mut values: Vec<f64> = data[..count * size]
        .chunks_exact(size)
        .map(|b| match (size, little) {
            (8, true) => f64::from_le_bytes(b.try_into().unwrap()),
            (8, false) => f64::from_be_bytes(b.try_into().unwrap()),
            (_, true) => f32::from_le_bytes(b.try_into().unwrap()) as f64,
            (_, false) => f32::from_be_bytes(b.try_into().unwrap()) as f64,
        })
        .collect();
    if fortran && shape.len() == 2 {
        // Column-major (r, c): element (i, j) is at j·r + i. Reorder to row-major.
        let (r, c) = (shape[0], shape[1]);
        values = (0..r * c).map(|k| values[(k % c) * r + k / c]).collect();
    } else if fortran && shape.len() > 2 {
        return Err(format!("Fortran-order arrays of {} dimensions are not supported", shape.len()));
    }
    Ok((values, shape))
}

/// The raw text of `key`'s value in the header's Python dict literal (up to the next top-level comma or `}`).
fn dict_value<'a>(header: &'a str, key: &str) -> std::result::Result<&'a str, String> {
    let at = [format!("'{key}'"), format!("\"{key}\"")]
        .iter()
        .find_map(|k| header.find(k.as_str()).map(|i| i + k.len()))
        .ok_or_else(|| format!("header {:?} has no `{key}`", header.trim_end()))?;
    let rest = header[at..].trim_start();
    let rest = rest.strip_prefix(':').ok_or_else(|| format!("header: no ':' after `{key}`"))?.trim_start();
    let mut depth = 0i32;
    for (i, ch) in rest.char_indices() {
        match ch {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth == 0 => return Ok(rest[..i].trim()),
            _ => {}
        }
    }
    Err(format!("header: unterminated value of `{key}`"))
}

/// A Python tuple of ints: `()`, `(3,)`, `(3, 3)`.
fn parse_shape(s: &str) -> std::result::Result<Vec<usize>, String> {
    let inner = s.strip_prefix('(').and_then(|t| t.strip_suffix(')')).ok_or_else(|| format!("bad shape {s:?}"))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.trim_end_matches('L').parse::<usize>().map_err(|_| format!("bad shape {s:?}")))
        .collect()
}
