//! `sqlite-layouts DB SQLFILE`: runs the SQL file's steps (each starts with a line
//! `--STEP name`) on DB and prints each step's CPU time (user and system, getrusage). Steps
//! whose name starts with `_` (setup) are left out of the total. A step that is one SELECT
//! has its rows read (every column of every row), as the archive commit reads them.
use std::error::Error;

fn cpu() -> (f64, f64) {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(u.ru_utime), secs(u.ru_stime))
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, db, file] = &args[..] else { return Err("usage: sqlite-layouts DB SQLFILE".into()) };
    let conn = rusqlite::Connection::open(db)?;
    let sql = std::fs::read_to_string(file)?;
    let (mut user, mut sys) = (0.0, 0.0);
    for step in sql.split("--STEP ").filter(|s| !s.trim().is_empty()) {
        let (name, body) = step.split_once('\n').ok_or("a step without a body")?;
        let (u0, s0) = cpu();
        if body.trim_start().to_uppercase().starts_with("SELECT") {
            let mut stmt = conn.prepare(body)?;
            let columns = stmt.column_count();
            let mut rows = stmt.query([])?;
            let mut n = 0u64;
            while let Some(row) = rows.next()? {
                for i in 0..columns {
                    std::hint::black_box(row.get_ref(i)?);
                }
                n += 1;
            }
            println!("{name:>12}: rows {n}");
        } else {
            conn.execute_batch(body)?;
        }
        let (u1, s1) = cpu();
        if !name.starts_with('_') {
            user += u1 - u0;
            sys += s1 - s0;
        }
        println!("{name:>12}: user {:.3} sys {:.3}", u1 - u0, s1 - s0);
    }
    println!("{:>12}: user {user:.3} sys {sys:.3} total {:.3}", "TOTAL", user + sys);
    Ok(())
}
