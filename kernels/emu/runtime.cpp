// The emulator's scheduler (see emulate.h): a launch runs its blocks on up to `workers` OS threads; on each,
// the block's threads are fibers run round-robin, each until it finishes or waits at a barrier.
// A barrier opens when every live thread of its scope (block, warp) waits at it. A block where that can
// never happen (a thread waiting at a barrier others skipped, mixed scopes) is reported as a deadlock.
//
// A fiber starts on its own stack through makecontext/swapcontext; after that every switch is _setjmp /
// _longjmp, which, unlike swapcontext, make no system call (swapcontext saves the signal mask: a syscall per
// switch made barrier-heavy kernels ten times slower). Fortify's longjmp check would reject jumping between
// stacks, so it is off for this file.
#undef _FORTIFY_SOURCE
#include <setjmp.h>
#include <ucontext.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "emulate.h"

namespace cxr_emu {
namespace {

constexpr size_t kStack = 128 * 1024;

enum class State { Ready, AtBlockBarrier, AtWarpBarrier, Done };

struct Fiber {
    ucontext_t ctx;     // the fiber's start (used once)
    jmp_buf resume;     // where it waits
    bool started = false;
    Place place;
    State state = State::Ready;
    std::unique_ptr<char[]> stack;  // not zeroed: only the pages a fiber touches are ever mapped
    // cp.async: this thread's copies not landed yet, in issue order, and where each committed group ends.
    std::vector<std::pair<float*, const float*>> copies;
    std::vector<size_t> group_ends;
};

struct Kernel {
    void* fn;
    Invoke invoke;
};

std::map<std::string, Kernel>& registry() {
    static std::map<std::string, Kernel> r;
    return r;
}

// One launch's shape and arguments (read by every worker).
struct Launch {
    Kernel k;
    void** args;
    dim3 grid, block;
};

// Per OS thread: the block being run.
struct Worker {
    const Launch* launch = nullptr;
    ucontext_t start_from;  // swapcontext's save slot when starting a fiber; never resumed
    jmp_buf scheduler;
    std::vector<Fiber> fibers;
    Fiber* current = nullptr;
    std::vector<uint64_t> slots;  // warp exchange, one per thread
    std::vector<float> mma_a, mma_b, mma_d;  // per-warp MMA operands
};

thread_local Worker* tl_worker = nullptr;

void fiber_main() {
    Worker* w = tl_worker;
    w->launch->k.invoke(w->launch->k.fn, w->launch->args);
    w->current->state = State::Done;
    _longjmp(w->scheduler, 1);
}

void wait_at(State s) {
    Worker* w = tl_worker;
    Fiber* f = w->current;
    f->state = s;
    if (_setjmp(f->resume) == 0) _longjmp(w->scheduler, 1);
}

// Runs fiber `f` until it waits or finishes.
void run_fiber(Worker& w, Fiber& f) {
    w.current = &f;
    if (_setjmp(w.scheduler) != 0) return;
    if (!f.started) {
        f.started = true;
        swapcontext(&w.start_from, &f.ctx);
    } else {
        _longjmp(f.resume, 1);
    }
}

// Runs block `b` to completion; false on a deadlock.
bool run_block(Worker& w, unsigned b) {
    const Launch& L = *w.launch;
    const unsigned nt = L.block.x * L.block.y * L.block.z;
    const dim3 bid{b % L.grid.x, (b / L.grid.x) % L.grid.y, b / (L.grid.x * L.grid.y)};
    w.fibers.resize(nt);
    for (unsigned t = 0; t < nt; ++t) {
        Fiber& f = w.fibers[t];
        f.place.thread = dim3{t % L.block.x, (t / L.block.x) % L.block.y, t / (L.block.x * L.block.y)};
        f.place.block = bid;
        f.place.linear = t;
        f.state = State::Ready;
        f.started = false;
        f.copies.clear();
        f.group_ends.clear();
        if (!f.stack) f.stack.reset(new char[kStack]);
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = f.stack.get();
        f.ctx.uc_stack.ss_size = kStack;
        f.ctx.uc_link = nullptr;  // fiber_main never returns: it jumps back to the scheduler
        makecontext(&f.ctx, fiber_main, 0);
    }
    const unsigned warps = (nt + 31) / 32;
    for (;;) {
        bool ran = false;
        for (auto& f : w.fibers) {
            if (f.state != State::Ready) continue;
            run_fiber(w, f);
            ran = true;
        }
        bool all_done = true, block_open = true;
        for (auto& f : w.fibers) {
            if (f.state != State::Done) all_done = false;
            if (f.state != State::Done && f.state != State::AtBlockBarrier) block_open = false;
        }
        if (all_done) return true;
        bool released = false;
        if (block_open) {
            for (auto& f : w.fibers)
                if (f.state == State::AtBlockBarrier) f.state = State::Ready;
            released = true;
        } else {
            for (unsigned wi = 0; wi < warps; ++wi) {
                unsigned lo = wi * 32, hi = std::min(nt, lo + 32);
                bool open = true, any = false;
                for (unsigned t = lo; t < hi; ++t) {
                    State s = w.fibers[t].state;
                    if (s == State::AtWarpBarrier) any = true;
                    else if (s != State::Done) open = false;
                }
                if (open && any) {
                    for (unsigned t = lo; t < hi; ++t)
                        if (w.fibers[t].state == State::AtWarpBarrier) w.fibers[t].state = State::Ready;
                    released = true;
                }
            }
        }
        if (!released && !ran) return false;
    }
}

std::mutex launch_mutex;

}  // namespace

const Place& here() { return tl_worker->current->place; }
const dim3& block_dim() { return tl_worker->launch->block; }
const dim3& grid_dim() { return tl_worker->launch->grid; }
void syncthreads() { wait_at(State::AtBlockBarrier); }
void syncwarp() { wait_at(State::AtWarpBarrier); }

uint64_t warp_read(uint64_t v, unsigned src) {
    Worker* w = tl_worker;
    const unsigned t = w->current->place.linear;
    const unsigned base = t - t % 32;
    w->slots[t] = v;
    syncwarp();
    const uint64_t r = w->slots[base + src];
    syncwarp();
    return r;
}

void mma_m16n8k8_tf32(float d[4], const uint32_t a[4], const uint32_t b[2]) {
    Worker* w = tl_worker;
    const unsigned t = w->current->place.linear;
    const unsigned warp = t / 32, lane = t % 32, g = lane / 4, q = lane % 4;
    float* A = &w->mma_a[warp * 256];  // 16×8 row-major
    float* B = &w->mma_b[warp * 128];  // 8×8, B[k][n] at k*8+n
    A[g * 8 + q] = u2f(a[0]);
    A[(g + 8) * 8 + q] = u2f(a[1]);
    A[g * 8 + q + 4] = u2f(a[2]);
    A[(g + 8) * 8 + q + 4] = u2f(a[3]);
    B[q * 8 + g] = u2f(b[0]);
    B[(q + 4) * 8 + g] = u2f(b[1]);
    syncwarp();
    const unsigned rows[4] = {g, g, g + 8, g + 8}, cols[4] = {2 * q, 2 * q + 1, 2 * q, 2 * q + 1};
    for (int i = 0; i < 4; ++i) {
        float acc = d[i];
        for (int k = 0; k < 8; ++k) acc += u2f(tf32_rna(A[rows[i] * 8 + k])) * u2f(tf32_rna(B[k * 8 + cols[i]]));
        d[i] = acc;
    }
    syncwarp();
}

void mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2]) {
    Worker* w = tl_worker;
    const unsigned t = w->current->place.linear;
    const unsigned warp = t / 32, lane = t % 32, g = lane / 4, q = lane % 4;
    float* A = &w->mma_a[warp * 256];  // 16×16 row-major
    float* B = &w->mma_b[warp * 128];  // 16×8, B[k][n] at k*8+n
    for (unsigned i = 0; i < 4; ++i) {
        const unsigned row = g + 8 * (i & 1), col = 2 * q + 8 * (i >> 1);
        A[row * 16 + col] = bf16_value(a[i] & 0xffffu);
        A[row * 16 + col + 1] = bf16_value(a[i] >> 16);
    }
    for (unsigned j = 0; j < 2; ++j) {
        const unsigned k = 2 * q + 8 * j;
        B[k * 8 + g] = bf16_value(b[j] & 0xffffu);
        B[(k + 1) * 8 + g] = bf16_value(b[j] >> 16);
    }
    syncwarp();
    const unsigned rows[4] = {g, g, g + 8, g + 8}, cols[4] = {2 * q, 2 * q + 1, 2 * q, 2 * q + 1};
    for (int i = 0; i < 4; ++i) {
        float acc = d[i];
        for (int k = 0; k < 16; ++k) acc += A[rows[i] * 16 + k] * B[k * 8 + cols[i]];
        d[i] = acc;
    }
    syncwarp();
}

// (row, k) of a canonical K-major no-swizzle operand described by `desc`, in `smem`.
static float wgmma_operand(const void* smem, uint64_t desc, unsigned row, unsigned k) {
    const uint64_t start = (desc & 0x3fffu) << 4, lbo = ((desc >> 16) & 0x3fffu) << 4, sbo = ((desc >> 32) & 0x3fffu) << 4;
    const uint64_t byte = start + (row / 8) * sbo + (row % 8) * 16 + (k / 4) * lbo + (k % 4) * 4;
    float v;
    std::memcpy(&v, static_cast<const char*>(smem) + byte, 4);
    return u2f(f2u(v) & 0xffffe000u);
}

void wgmma_m64n32k8_tf32(float d[16], uint64_t desc_a, uint64_t desc_b, const void* smem) {
    const unsigned t = tl_worker->current->place.linear % 128;
    const unsigned warp = t / 32, lane = t % 32, g = lane / 4, q = lane % 4;
    for (unsigned j = 0; j < 4; ++j)
        for (unsigned h = 0; h < 2; ++h)
            for (unsigned c = 0; c < 2; ++c) {
                const unsigned row = 16 * warp + g + 8 * h, col = 8 * j + 2 * q + c;
                float acc = d[4 * j + 2 * h + c];
                for (unsigned k = 0; k < 8; ++k) acc += wgmma_operand(smem, desc_a, row, k) * wgmma_operand(smem, desc_b, col, k);
                d[4 * j + 2 * h + c] = acc;
            }
}

void cp_async_f32(float* dst, const float* src) { tl_worker->current->copies.emplace_back(dst, src); }

void cp_async_commit() {
    Fiber* f = tl_worker->current;
    f->group_ends.push_back(f->copies.size());
}

void cp_async_wait(unsigned newest_pending) {
    Fiber* f = tl_worker->current;
    if (f->group_ends.size() <= newest_pending) return;
    const size_t landed_groups = f->group_ends.size() - newest_pending;
    const size_t landed = f->group_ends[landed_groups - 1];
    for (size_t i = 0; i < landed; ++i) *f->copies[i].first = f->copies[i].second ? *f->copies[i].second : 0.0f;
    f->copies.erase(f->copies.begin(), f->copies.begin() + static_cast<std::ptrdiff_t>(landed));
    f->group_ends.erase(f->group_ends.begin(), f->group_ends.begin() + static_cast<std::ptrdiff_t>(landed_groups));
    for (auto& e : f->group_ends) e -= landed;
}

int register_kernel_raw(const char* name, void* fn, Invoke invoke) {
    registry()[name] = Kernel{fn, invoke};
    return 0;
}

// The C entry points stay inside the namespace (C linkage ignores it), so no using-directive leaks into the
// kernels' translation unit.

// 0: ran; 1: no kernel of that name; 2: a deadlock (the message names the block); 3: a bad launch shape.
extern "C" int cxr_emu_launch(const char* name, const unsigned grid[3], const unsigned block[3], void** args, unsigned workers,
                              char* message, size_t message_len) {
    auto it = registry().find(name);
    if (it == registry().end()) {
        std::snprintf(message, message_len, "the emulator has no kernel named %s", name);
        return 1;
    }
    const unsigned nt = block[0] * block[1] * block[2];
    const unsigned long long nb = 1ull * grid[0] * grid[1] * grid[2];
    if (nt == 0 || nt > 1024 || nb == 0) {
        std::snprintf(message, message_len, "%s: launch of %ux%ux%u blocks of %ux%ux%u threads", name, grid[0], grid[1], grid[2],
                      block[0], block[1], block[2]);
        return 3;
    }
    std::lock_guard<std::mutex> lock(launch_mutex);
    Launch L{it->second, args, dim3{grid[0], grid[1], grid[2]}, dim3{block[0], block[1], block[2]}};
    std::atomic<unsigned long long> next{0};
    std::atomic<long long> deadlocked{-1};
    auto work = [&]() {
        Worker w;
        w.launch = &L;
        w.slots.assign(((nt + 31) / 32) * 32, 0);
        w.mma_a.assign(((nt + 31) / 32) * 256, 0.f);  // room for m16n8k16's A; m16n8k8 uses the first half
        w.mma_b.assign(((nt + 31) / 32) * 128, 0.f);
        tl_worker = &w;
        for (unsigned long long b; (b = next.fetch_add(1)) < nb && deadlocked.load() < 0;) {
            if (!run_block(w, static_cast<unsigned>(b))) deadlocked.store(static_cast<long long>(b));
        }
        tl_worker = nullptr;
    };
    const unsigned n_workers = static_cast<unsigned>(std::min<unsigned long long>(std::max(1u, workers), nb));
    std::vector<std::thread> pool;
    for (unsigned i = 1; i < n_workers; ++i) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
    if (deadlocked.load() >= 0) {
        std::snprintf(message, message_len, "%s: block %lld deadlocked (threads wait at a barrier the others never reach)", name,
                      deadlocked.load());
        return 2;
    }
    return 0;
}

extern "C" int cxr_emu_has_kernel(const char* name) { return registry().count(name) ? 1 : 0; }

}  // namespace cxr_emu
