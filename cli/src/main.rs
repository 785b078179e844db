//! The `collector` command. Wiring only: the rules live in the `collector` library.

mod commands;
mod demo;

use clap::Parser;

// The request path allocates many small JSON values; mimalloc roughly halves their cost
// against glibc malloc on this workload (docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// mimalloc commits its arenas eagerly on Linux (overcommit): memory it has freed stays
// counted in RSS until its purge delay passes, which nearly doubled the archive run's peak RSS
// (88 -> 44 MiB with lazy commit, same CPU: docs/PERFORMANCE.md). The option is read when an
// arena is reserved, i.e. at the first allocation, which happens before `main`; so it is set
// from an ELF constructor, which runs after mimalloc's own (priority 101) and before `main`.
// 4 is `mi_option_arena_eager_commit` in mimalloc.h (v2 and v3); libmimalloc-sys names no
// constant for it.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static MIMALLOC_LAZY_COMMIT: extern "C" fn() = {
    extern "C" fn lazy_commit() {
        const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
        // SAFETY: sets one integer option; mimalloc is initialised (its constructor ran first).
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0) }
    }
    lazy_commit
};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    commands::run(commands::Cli::parse()).await
}
