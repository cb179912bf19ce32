//! The oracle against PyTorch: every tests/golden/ops/*.safetensors file (written by
//! scripts/make_classifier_golden.py, float64 PyTorch 1.13) is recomputed with the oracle, which must agree to
//! 1e-12 relative L2 per output (far inside each file's own bar, which is meant for f32 backends).
//!
//! The reference crate depends on nothing, so the safetensors header (8-byte little-endian length, then JSON)
//! is read by the small JSON parser below.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::rel_err;
use cxr_gan_reference::*;

/// The oracle's bar against float64 PyTorch: both are f64, so only summation order differs.
const ORACLE_TOL: f64 = 1e-12;

#[derive(Clone, Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(kv) => kv.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn num(&self) -> f64 {
        match self {
            Json::Num(v) => *v,
            other => panic!("expected a number, got {other:?}"),
        }
    }
    fn usizes(&self) -> Vec<usize> {
        match self {
            Json::Arr(a) => a.iter().map(|v| v.num() as usize).collect(),
            other => panic!("expected an array, got {other:?}"),
        }
    }
    fn pair(&self) -> [usize; 2] {
        let v = self.usizes();
        assert_eq!(v.len(), 2, "expected two numbers, got {v:?}");
        [v[0], v[1]]
    }
    fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            other => panic!("expected a string, got {other:?}"),
        }
    }
}

/// A recursive-descent JSON parser: enough for safetensors headers and the metadata's JSON strings.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn parse(text: &str) -> Json {
        let mut p = Parser { s: text.as_bytes(), i: 0 };
        let v = p.value();
        p.ws();
        assert_eq!(p.i, p.s.len(), "trailing characters in JSON");
        v
    }
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) {
        self.ws();
        assert_eq!(self.s.get(self.i), Some(&c), "JSON: expected '{}' at {}", c as char, self.i);
        self.i += 1;
    }
    fn peek(&mut self) -> u8 {
        self.ws();
        *self.s.get(self.i).expect("JSON: unexpected end")
    }
    fn lit(&mut self, word: &str, v: Json) -> Json {
        assert!(self.s[self.i..].starts_with(word.as_bytes()), "JSON: bad literal at {}", self.i);
        self.i += word.len();
        v
    }
    fn value(&mut self) -> Json {
        match self.peek() {
            b'{' => {
                self.eat(b'{');
                let mut kv = Vec::new();
                if self.peek() == b'}' {
                    self.eat(b'}');
                    return Json::Obj(kv);
                }
                loop {
                    let k = self.string();
                    self.eat(b':');
                    kv.push((k, self.value()));
                    if self.peek() == b',' {
                        self.eat(b',');
                    } else {
                        self.eat(b'}');
                        return Json::Obj(kv);
                    }
                }
            }
            b'[' => {
                self.eat(b'[');
                let mut a = Vec::new();
                if self.peek() == b']' {
                    self.eat(b']');
                    return Json::Arr(a);
                }
                loop {
                    a.push(self.value());
                    if self.peek() == b',' {
                        self.eat(b',');
                    } else {
                        self.eat(b']');
                        return Json::Arr(a);
                    }
                }
            }
            b'"' => Json::Str(self.string()),
            b't' => self.lit("true", Json::Bool(true)),
            b'f' => self.lit("false", Json::Bool(false)),
            b'n' => self.lit("null", Json::Null),
            _ => {
                let start = self.i;
                while self.i < self.s.len() && matches!(self.s[self.i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                    self.i += 1;
                }
                let t = std::str::from_utf8(&self.s[start..self.i]).unwrap();
                Json::Num(t.parse().unwrap_or_else(|_| panic!("JSON: bad number {t:?} at {start}")))
            }
        }
    }
    fn string(&mut self) -> String {
        self.eat(b'"');
        let mut out = Vec::new();
        loop {
            let c = self.s[self.i];
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).expect("JSON: string not UTF-8"),
                b'\\' => {
                    let e = self.s[self.i];
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hex = std::str::from_utf8(&self.s[self.i..self.i + 4]).unwrap();
                            self.i += 4;
                            char::from_u32(u32::from_str_radix(hex, 16).unwrap()).expect("JSON: surrogate escapes unsupported")
                        }
                        _ => panic!("JSON: bad escape \\{}", e as char),
                    };
                    out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                }
                _ => out.push(c),
            }
        }
    }
}

struct Golden {
    name: String,
    tensors: HashMap<String, Array>,
    op: String,
    params: Json,
    tol: Json,
}

impl Golden {
    fn load(path: &Path) -> Golden {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header = Parser::parse(std::str::from_utf8(&bytes[8..8 + n]).expect("header not UTF-8"));
        let body = &bytes[8 + n..];
        let Json::Obj(entries) = &header else { panic!("header is not an object") };
        let mut tensors = HashMap::new();
        let mut meta = None;
        for (k, v) in entries {
            if k == "__metadata__" {
                meta = Some(v.clone());
                continue;
            }
            assert_eq!(v.get("dtype").map(Json::str), Some("F64"), "{k}: only F64 is expected");
            let shape = v.get("shape").expect("shape").usizes();
            let [a, b] = v.get("data_offsets").expect("data_offsets").pair();
            assert!(a <= b && b <= body.len() && (b - a) % 8 == 0, "{k}: offsets [{a}, {b}) of {}", body.len());
            let data: Vec<f64> = body[a..b].chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect();
            tensors.insert(k.clone(), Array::new(&shape, data));
        }
        let meta = meta.expect("no __metadata__");
        let field = |k: &str| meta.get(k).unwrap_or_else(|| panic!("metadata lacks {k}")).str().to_string();
        Golden {
            name: path.file_stem().unwrap().to_string_lossy().into_owned(),
            tensors,
            op: field("op"),
            params: Parser::parse(&field("params")),
            tol: Parser::parse(&field("tol")),
        }
    }
    fn t(&self, k: &str) -> &Array {
        self.tensors.get(k).unwrap_or_else(|| panic!("{}: no tensor {k}", self.name))
    }
    fn p(&self, k: &str) -> &Json {
        self.params.get(k).unwrap_or_else(|| panic!("{}: no param {k}", self.name))
    }
    fn dims4(&self, k: &str) -> [usize; 4] {
        self.t(k).dims4()
    }
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/ops")
}

/// The oracle's outputs for one file, by output tensor name.
fn run(g: &Golden) -> Vec<(&'static str, Vec<f64>)> {
    match g.op.as_str() {
        "max_pool2d" => {
            let (k, s, p) = (g.p("kernel").pair(), g.p("stride").pair(), g.p("padding").pair());
            let x = g.t("in.x");
            vec![("out.y", max_pool2d(x, k, s, p).data), ("out.dx", max_pool2d_bwd(g.t("in.dy"), x, k, s, p).data)]
        }
        "avg_pool2d" => {
            let (k, s, p) = (g.p("kernel").pair(), g.p("stride").pair(), g.p("padding").pair());
            let include = match g.p("count_include_pad") {
                Json::Bool(b) => *b,
                other => panic!("count_include_pad {other:?}"),
            };
            let y = avg_pool2d(g.t("in.x"), k, s, p, include);
            let dx = avg_pool2d_bwd(g.t("in.dy"), g.dims4("in.x"), k, s, p, include);
            vec![("out.y", y.data), ("out.dx", dx.data)]
        }
        "global_avg_pool2d" => {
            vec![("out.y", global_avg_pool2d(g.t("in.x")).data), ("out.dx", global_avg_pool2d_bwd(g.t("in.dy"), g.dims4("in.x")).data)]
        }
        "concat_channels" => {
            let xs = [g.t("in.x0"), g.t("in.x1"), g.t("in.x2")];
            let chans: Vec<usize> = xs.iter().map(|x| x.dims4()[1]).collect();
            let mut dxs = concat_channels_bwd(g.t("in.dy"), &chans).into_iter();
            let mut next = || dxs.next().unwrap().data;
            vec![("out.y", concat_channels(&xs).data), ("out.dx0", next()), ("out.dx1", next()), ("out.dx2", next())]
        }
        "linear" => {
            let (x, w) = (g.t("in.x"), g.t("in.w"));
            let (dx, dw, db) = linear_bwd(g.t("in.dy"), x, w);
            vec![("out.y", linear(x, w, &g.t("in.b").data).data), ("out.dx", dx.data), ("out.dw", dw.data), ("out.db", db)]
        }
        "cross_entropy" => {
            let target: Vec<usize> = g.t("in.target").data.iter().map(|&v| v as usize).collect();
            let (loss, dz) = cross_entropy(g.t("in.logits"), &target);
            vec![("out.loss", vec![loss]), ("out.dlogits", dz.data)]
        }
        "dropout" => {
            let (mask, p) = (g.t("in.mask"), g.p("p").num());
            vec![("out.y", dropout(g.t("in.x"), mask, p).data), ("out.dx", dropout(g.t("in.dy"), mask, p).data)]
        }
        other => panic!("{}: unknown op {other}", g.name),
    }
}

#[test]
fn json_parser_reads_what_it_must() {
    let v = Parser::parse(r#" {"a": [1, -2.5e-3, true, null], "b\"\\\u00e9": {"c": "x"}, "d": {}, "e": []} "#);
    assert_eq!(v.get("a"), Some(&Json::Arr(vec![Json::Num(1.0), Json::Num(-2.5e-3), Json::Bool(true), Json::Null])));
    assert_eq!(v.get("b\"\\é").and_then(|o| o.get("c")), Some(&Json::Str("x".into())));
    assert_eq!(v.get("d"), Some(&Json::Obj(vec![])));
    assert_eq!(v.get("e"), Some(&Json::Arr(vec![])));
}

#[test]
fn oracle_matches_pytorch_classifier_goldens() {
    let dir = golden_dir();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/make_classifier_golden.py)", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no golden files in {}", dir.display());
    for path in &paths {
        let g = Golden::load(path);
        let outs = run(&g);
        let Json::Obj(tols) = &g.tol else { panic!("{}: tol is not an object", g.name) };
        // Every output the file grades is computed, and is graded here.
        for (k, bar) in tols {
            assert!(outs.iter().any(|(o, _)| o == k), "{}: the oracle does not produce {k}", g.name);
            assert!(bar.num() > 0.0 && bar.num() <= 1e-5, "{}: odd tolerance {bar:?} for {k}", g.name);
        }
        for (k, ours) in &outs {
            assert!(tols.iter().any(|(t, _)| t == k), "{}: {k} has no tolerance", g.name);
            let want = g.t(k);
            assert_eq!(ours.len(), want.len(), "{}: {k} size", g.name);
            let e = rel_err(ours, &want.data);
            println!("rel_err {e:.3e}  {} {k}", g.name);
            assert!(e <= ORACLE_TOL, "{}: {k} relative error {e:.3e} > {ORACLE_TOL:.0e}", g.name);
        }
    }
    println!("{} golden files checked", paths.len());
}
