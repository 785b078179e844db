//! The figures report: goals, one line per figure, the summary, and small formatting and
//! environment helpers.

#[derive(Clone, Copy)]
pub(crate) enum Goal {
    AtMost(f64),
    AtLeast(f64),
    /// Must equal (counts).
    Exactly(f64),
    /// Shown for context; no goal of its own.
    Info,
}

pub(crate) struct Figure {
    pub(crate) name: String,
    pub(crate) value: f64,
    pub(crate) goal: Goal,
    pub(crate) note: String,
}

impl Figure {
    pub(crate) fn pass(&self) -> bool {
        match self.goal {
            Goal::AtMost(g) => self.value <= g,
            Goal::AtLeast(g) => self.value >= g,
            Goal::Exactly(g) => self.value == g,
            Goal::Info => true,
        }
    }
    pub(crate) fn line(&self) -> String {
        let goal = match self.goal {
            Goal::AtMost(g) => format!("goal <= {}", fmt_num(g)),
            Goal::AtLeast(g) => format!("goal >= {}", fmt_num(g)),
            Goal::Exactly(g) => format!("goal == {}", fmt_num(g)),
            Goal::Info => "info".to_string(),
        };
        let verdict = match (self.goal, self.pass()) {
            (Goal::Info, _) => "    ",
            (_, true) => "PASS",
            (_, false) => "MISS",
        };
        let note = if self.note.is_empty() { String::new() } else { format!("  [{}]", self.note) };
        format!("{:<42} {:>12}  ({goal})  {verdict}{note}", self.name, fmt_num(self.value))
    }
}

pub(crate) fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

#[derive(Default)]
pub(crate) struct Report {
    pub(crate) figures: Vec<Figure>,
}

impl Report {
    pub(crate) fn add(&mut self, name: &str, value: f64, goal: Goal, note: impl Into<String>) {
        let f = Figure { name: name.into(), value, goal, note: note.into() };
        println!("{}", f.line());
        self.figures.push(f);
    }
}

pub(crate) fn info(msg: impl AsRef<str>) {
    println!("    {}", msg.as_ref());
}

pub(crate) fn env_num(var: &str, default: u64) -> u64 {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => {
            v.trim().replace('_', "").parse().unwrap_or_else(|_| panic!("{var}={v:?} is not a number"))
        }
        _ => default,
    }
}

pub(crate) fn fmt_ms(xs: &[f64]) -> String {
    xs.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join(", ")
}

pub(crate) fn short(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}m", n / 1_000_000)
    } else if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}
