"""
promcheck.py — a strict checker of the Prometheus text exposition format
0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/), for
the relay's metrics. Standard library only.

    from promcheck import parse, PromError
    fams = parse(text)              # raises PromError("line N: ...")
    fams.value("interlist_messages_total", result="accepted")

Stricter than Prometheus itself, on purpose:
  - every family has exactly one # HELP and one # TYPE, both before its
    first sample; a family's samples are one contiguous group;
  - every sample line is `name{label="value",...} value` (no timestamps);
    label values use only the escapes \\\\, \\" and \\n; no duplicate label
    names, no duplicate series;
  - counter names end in _total; counter values are finite and >= 0;
  - histograms: name_bucket (with le), name_sum and name_count per label
    set; le values parse as floats, appear once each, in increasing order,
    the last is "+Inf"; bucket counts are cumulative (never decrease) and
    name_count equals the +Inf bucket;
  - the text ends with a newline and has no blank lines.

Run as a program: `promcheck.py [FILE]` checks FILE (or stdin) and exits 0
or 1; `promcheck.py --self-test` checks the checker against broken input.
"""
import math
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class PromError(Exception):
    pass


def parse_float(s):
    """A sample value as the format has it (Go's ParseFloat, plus the
    spellings +Inf, -Inf, NaN); ValueError otherwise."""
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", s):
        raise ValueError("not a number: %r" % s)
    return float(s)


class Family:
    def __init__(self, name):
        self.name = name
        self.help = None
        self.type = None
        self.samples = []        # (sample name, labels dict, value)


class Families(dict):
    """name -> Family, in order of appearance."""

    def series(self):
        """{(sample name, frozenset of label items): value} of every sample."""
        out = {}
        for f in self.values():
            for n, labels, v in f.samples:
                out[(n, frozenset(labels.items()))] = v
        return out

    def value(self, sample_name, **labels):
        """The value of the sample with exactly these labels; KeyError if none."""
        want = frozenset(labels.items())
        for f in self.values():
            for n, ls, v in f.samples:
                if n == sample_name and frozenset(ls.items()) == want:
                    return v
        raise KeyError("%s%r" % (sample_name, labels))

    def samples(self, sample_name):
        return [(ls, v) for f in self.values() for n, ls, v in f.samples if n == sample_name]


def _parse_labels(s, pos, lineno):
    """Parse `{...}` at s[pos] ('{'); returns (labels dict, position after '}')."""
    labels = {}
    pos += 1
    while True:
        if pos < len(s) and s[pos] == "}":
            return labels, pos + 1
        m = LABEL.match(s, pos)
        if not m:
            raise PromError("line %d: bad label name at column %d" % (lineno, pos + 1))
        lname = m.group(0)
        if lname in labels:
            raise PromError("line %d: label %s given twice" % (lineno, lname))
        if lname.startswith("__"):
            raise PromError("line %d: label name %s is reserved" % (lineno, lname))
        pos = m.end()
        if s[pos:pos + 2] != '="':
            raise PromError("line %d: expected =\" after label %s" % (lineno, lname))
        pos += 2
        val = []
        while True:
            if pos >= len(s):
                raise PromError("line %d: unterminated label value" % lineno)
            c = s[pos]
            if c == "\\":
                nxt = s[pos + 1:pos + 2]
                if nxt not in ("\\", '"', "n"):
                    raise PromError("line %d: bad escape \\%s in label value" % (lineno, nxt))
                val.append("\n" if nxt == "n" else nxt)
                pos += 2
            elif c == '"':
                pos += 1
                break
            else:
                val.append(c)
                pos += 1
        labels[lname] = "".join(val)
        if pos < len(s) and s[pos] == ",":
            pos += 1
            continue
        if pos < len(s) and s[pos] == "}":
            return labels, pos + 1
        raise PromError("line %d: expected , or } after label %s" % (lineno, lname))


def _family_of(sample, types):
    """The family a sample name belongs to, given the families declared."""
    for suffix in ("_bucket", "_sum", "_count"):
        if sample.endswith(suffix):
            base = sample[:-len(suffix)]
            if types.get(base) in ("histogram", "summary") and (suffix != "_bucket" or
                                                                types[base] == "histogram"):
                return base
    return sample


def _check_family(f):
    if f.help is None or f.type is None:
        raise PromError("family %s: needs both # HELP and # TYPE" % f.name)
    if not f.samples:
        return
    if f.type == "counter":
        if not f.name.endswith("_total"):
            raise PromError("counter %s: name does not end in _total" % f.name)
        for n, ls, v in f.samples:
            if n != f.name:
                raise PromError("counter %s: foreign sample %s" % (f.name, n))
            if math.isnan(v) or v < 0 or math.isinf(v):
                raise PromError("counter %s%r: value %r" % (n, ls, v))
    elif f.type in ("gauge", "untyped"):
        for n, ls, v in f.samples:
            if n != f.name:
                raise PromError("%s %s: foreign sample %s" % (f.type, f.name, n))
    elif f.type == "histogram":
        groups = {}
        for n, ls, v in f.samples:
            rest = {k: x for k, x in ls.items() if not (n == f.name + "_bucket" and k == "le")}
            g = groups.setdefault(frozenset(rest.items()), {"buckets": [], "sum": None, "count": None})
            if n == f.name + "_bucket":
                if "le" not in ls:
                    raise PromError("histogram %s: bucket without le" % f.name)
                try:
                    le = parse_float(ls["le"])
                except ValueError:
                    raise PromError("histogram %s: bad le %r" % (f.name, ls["le"]))
                g["buckets"].append((le, ls["le"], v))
            elif n == f.name + "_sum":
                if "le" in ls:
                    raise PromError("histogram %s: _sum with le" % f.name)
                g["sum"] = v
            elif n == f.name + "_count":
                if "le" in ls:
                    raise PromError("histogram %s: _count with le" % f.name)
                g["count"] = v
            else:
                raise PromError("histogram %s: foreign sample %s" % (f.name, n))
        for key, g in groups.items():
            where = "histogram %s%s" % (f.name, dict(key))
            b = g["buckets"]
            if not b:
                raise PromError("%s: no buckets" % where)
            if g["sum"] is None or g["count"] is None:
                raise PromError("%s: needs _sum and _count" % where)
            les = [x[0] for x in b]
            if les != sorted(les) or len(set(les)) != len(les):
                raise PromError("%s: le values not strictly increasing: %r" % (where, [x[1] for x in b]))
            if b[-1][1] != "+Inf":
                raise PromError("%s: last bucket is le=%r, not \"+Inf\"" % (where, b[-1][1]))
            counts = [x[2] for x in b]
            if any(c2 < c1 for c1, c2 in zip(counts, counts[1:])):
                raise PromError("%s: buckets not cumulative: %r" % (where, counts))
            if any(math.isnan(c) or c < 0 for c in counts):
                raise PromError("%s: bad bucket count" % where)
            if g["count"] != counts[-1]:
                raise PromError("%s: _count %r != +Inf bucket %r" % (where, g["count"], counts[-1]))
    elif f.type == "summary":
        for n, ls, v in f.samples:
            if n not in (f.name, f.name + "_sum", f.name + "_count"):
                raise PromError("summary %s: foreign sample %s" % (f.name, n))


def parse(text):
    """Parse and check; returns Families or raises PromError."""
    if not isinstance(text, str):
        text = text.decode("utf-8")
    if text and not text.endswith("\n"):
        raise PromError("the text does not end with a newline")
    fams = Families()
    types = {}
    seen_series = set()
    current = None          # family whose samples are being read
    closed = set()          # families whose sample group has ended
    for lineno, line in enumerate(text.split("\n")[:-1], 1):
        if line == "":
            raise PromError("line %d: blank line" % lineno)
        if line.startswith("#"):
            m = re.fullmatch(r"# (HELP|TYPE) (\S+)(?: (.*))?", line)
            if not m:
                if line.startswith("# HELP") or line.startswith("# TYPE"):
                    raise PromError("line %d: malformed %s line" % (lineno, line[2:6]))
                continue    # a plain comment
            kind, name, rest = m.group(1), m.group(2), m.group(3)
            if not NAME.fullmatch(name):
                raise PromError("line %d: bad metric name %r" % (lineno, name))
            f = fams.get(name)
            if f is None:
                f = fams[name] = Family(name)
            if f.samples or name in closed:
                raise PromError("line %d: %s for %s after its samples" % (lineno, kind, name))
            if kind == "HELP":
                if f.help is not None:
                    raise PromError("line %d: second HELP for %s" % (lineno, name))
                doc = rest or ""
                if not re.fullmatch(r"([^\\]|\\[\\n])*", doc):
                    raise PromError("line %d: bad escape in HELP of %s" % (lineno, name))
                f.help = doc
            else:
                if f.type is not None:
                    raise PromError("line %d: second TYPE for %s" % (lineno, name))
                if rest not in TYPES:
                    raise PromError("line %d: unknown type %r for %s" % (lineno, rest, name))
                f.type = rest
                types[name] = rest
            if current is not None and current != name:
                closed.add(current)
                current = None
            continue
        m = NAME.match(line)
        if not m:
            raise PromError("line %d: no metric name: %r" % (lineno, line))
        sname = m.group(0)
        pos = m.end()
        labels = {}
        if pos < len(line) and line[pos] == "{":
            labels, pos = _parse_labels(line, pos, lineno)
        if line[pos:pos + 1] != " ":
            raise PromError("line %d: expected one space before the value" % lineno)
        parts = line[pos + 1:].split(" ")
        if len(parts) != 1 or parts[0] == "":
            raise PromError("line %d: expected exactly one value (no timestamp): %r" % (lineno, line))
        try:
            value = parse_float(parts[0])
        except ValueError as e:
            raise PromError("line %d: %s" % (lineno, e))
        fam = _family_of(sname, types)
        f = fams.get(fam)
        if f is None or f.type is None or f.help is None:
            raise PromError("line %d: sample %s before its family's HELP and TYPE" % (lineno, sname))
        if fam in closed:
            raise PromError("line %d: samples of %s are not one group" % (lineno, fam))
        if current is not None and current != fam:
            closed.add(current)
        current = fam
        key = (sname, frozenset(labels.items()))
        if key in seen_series:
            raise PromError("line %d: series %s%r given twice" % (lineno, sname, labels))
        seen_series.add(key)
        f.samples.append((sname, labels, value))
    for f in fams.values():
        _check_family(f)
    return fams


def errors(text):
    """[] if text passes, else [the first problem]."""
    try:
        parse(text)
        return []
    except PromError as e:
        return [str(e)]


GOOD = """# HELP x_total A counter.
# TYPE x_total counter
x_total{result="a\\\\b\\"c\\nd"} 3
x_total{result="b"} 0
# HELP g A gauge.
# TYPE g gauge
g -1.5e3
# HELP h_seconds A histogram.
# TYPE h_seconds histogram
h_seconds_bucket{list="l",le="0.5"} 1
h_seconds_bucket{list="l",le="1"} 2
h_seconds_bucket{list="l",le="+Inf"} 3
h_seconds_sum{list="l"} 4.25
h_seconds_count{list="l"} 3
"""

# (what is broken, the text): each must be refused.
BAD = [
    ("no trailing newline", GOOD[:-1]),
    ("counter without _total", GOOD.replace("x_total", "x")),
    ("missing HELP", GOOD.replace("# HELP g A gauge.\n", "")),
    ("TYPE after sample", GOOD.replace("# TYPE g gauge\ng -1.5e3\n", "g -1.5e3\n# TYPE g gauge\n")),
    ("bad escape", GOOD.replace('\\\\b', '\\tb')),
    ("unquoted label", GOOD.replace('result="b"', "result=b")),
    ("timestamp", GOOD.replace("g -1.5e3", "g -1.5e3 1700000000000")),
    ("two spaces", GOOD.replace("g -1.5e3", "g  -1.5e3")),
    ("not cumulative", GOOD.replace('le="1"} 2', 'le="1"} 0')),
    ("no +Inf", GOOD.replace('le="+Inf"', 'le="2"')),
    ("count != +Inf", GOOD.replace('h_seconds_count{list="l"} 3', 'h_seconds_count{list="l"} 4')),
    ("duplicate series", GOOD.replace('x_total{result="b"} 0', 'x_total{result="b"} 0\nx_total{result="b"} 1')),
    ("split group", GOOD + 'x_total{result="c"} 1\n'),
    ("negative counter", GOOD.replace('result="b"} 0', 'result="b"} -1')),
    ("blank line", GOOD.replace("# HELP g", "\n# HELP g")),
    ("bad value", GOOD.replace("g -1.5e3", "g one")),
    ("unknown type", GOOD.replace("# TYPE g gauge", "# TYPE g meter")),
    ("le out of order", GOOD.replace('le="0.5"} 1\nh_seconds_bucket{list="l",le="1"} 2',
                                     'le="1"} 1\nh_seconds_bucket{list="l",le="0.5"} 2')),
]


def self_test():
    """[] if the checker takes GOOD and refuses every BAD, else what went wrong."""
    out = []
    try:
        f = parse(GOOD)
        if f.value("x_total", result='a\\b"c\nd') != 3 or f.value("g") != -1500:
            out.append("GOOD parsed to wrong values")
    except PromError as e:
        out.append("GOOD refused: %s" % e)
    for what, text in BAD:
        if not errors(text):
            out.append("accepted: %s" % what)
    return out


def main(argv):
    if argv[1:] == ["--self-test"]:
        bad = self_test()
        for b in bad:
            print(b)
        return 1 if bad else 0
    text = open(argv[1]).read() if len(argv) > 1 else sys.stdin.read()
    errs = errors(text)
    for e in errs:
        print(e)
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
