// Native C++ main for the self-running harnesses (sim.verilator.build_harness(..., main="native")): no cocotb,
// no VPI, no Python and no --timing. It does what cocotb_tests/harness_tb.py does, in C++:
//   * the clock: `clk` toggles every 5 ns (period 10 ns, low first: rising edges at 5, 15, 25 ... ns);
//   * the reset: `rst` is 1 from time 0 for two rising edges and released at the falling edge after them
//     (20 ns), like HarnessTB.reset;
//   * the wait: it runs until `done` is 1 after a rising edge (or $finish), at most
//     (+max_cycles or +cycles + +drain, plus 100) * 2 clock periods like HarnessTB.wait_done, then runs the
//     model's `final` blocks (the harness writes its files there) and exits.
// It writes tb_timing.json into the working directory (the run directory): the wall seconds from the release
// of the reset to `done` ("loop_seconds"), the process CPU seconds of the same stretch ("loop_cpu_seconds": less
// sensitive to a busy machine) and the clock cycles in between ("cycles").
// The model's top must have the inputs `clk` and `rst` and the output `done`. Waves (a --trace build):
// dump.vcd in the working directory, timescale as built. Coverage builds write coverage.dat there.
// Exit status: 0 when `done` rose, 2 on a wait timeout (message on stderr), 1 when an error was counted.
#include <chrono>
#include <ctime>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "Vtop.h"
#include "verilated.h"
#if VM_TRACE
#include "verilated_vcd_c.h"
#endif
#if VM_COVERAGE
#include "verilated_cov.h"
#endif

static uint64_t plusarg(VerilatedContext* ctx, const char* name, uint64_t dflt) {
    const std::string prefix = std::string(name) + "=";
    const char* match = ctx->commandArgsPlusMatch(prefix.c_str());  // "+name=value" or ""
    if (!match || !*match) return dflt;
    return std::strtoull(match + prefix.size() + 1, nullptr, 10);
}

int main(int argc, char** argv) {
    const std::unique_ptr<VerilatedContext> ctx{new VerilatedContext};
    ctx->commandArgs(argc, argv);
    ctx->fatalOnError(true);
    const std::unique_ptr<Vtop> top{new Vtop{ctx.get(), ""}};  // "": the names cocotb's main gives (VCD scopes)

    // One half period in time precision units: 5 ns (the harness timescale is 1ns/1ps: 5000).
    const int prec = ctx->timeprecision();  // e.g. -12 for ps
    uint64_t half = 5;
    for (int p = -9; p > prec; --p) half *= 10;

    uint64_t bound = plusarg(ctx.get(), "max_cycles", 0);
    if (!bound) bound = plusarg(ctx.get(), "cycles", 0) + plusarg(ctx.get(), "drain", 0);
    if (!bound) bound = 1000000;
    const uint64_t max_edges = (bound + 100) * 2;  // HarnessTB.wait_done's timeout, in rising edges

#if VM_TRACE
    ctx->traceEverOn(true);
    std::unique_ptr<VerilatedVcdC> tfp{new VerilatedVcdC};
    top->trace(tfp.get(), 99);
    tfp->open("dump.vcd");
#define DUMP() tfp->dump(ctx->time())
#else
#define DUMP() \
    do { \
    } while (0)
#endif

    top->clk = 0;
    top->rst = 1;
    top->eval();
    DUMP();
    auto edge = [&]() {  // advance half a period, toggle the clock, evaluate
        ctx->timeInc(half);
        top->clk = !top->clk;
        top->eval();
        DUMP();
    };
    for (int i = 0; i < 4 && !ctx->gotFinish(); ++i) edge();  // rise 5, fall 10, rise 15, fall 20 ns
    top->rst = 0;
    top->eval();
    DUMP();

    const auto t0 = std::chrono::steady_clock::now();
    const std::clock_t c0 = std::clock();
    uint64_t edges = 0;
    bool done = top->done;
    while (!done && !ctx->gotFinish() && edges < max_edges) {
        edge();  // rising
        ++edges;
        done = top->done;
        if (done || ctx->gotFinish()) break;
        edge();  // falling
    }
    const double loop = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;

    top->final();
#if VM_TRACE
    tfp->close();
#endif
#if VM_COVERAGE
    ctx->coveragep()->write();  // coverage.dat, like cocotb's Verilator main
#endif
    if (FILE* f = std::fopen("tb_timing.json", "w")) {
        std::fprintf(f, "{\"loop_seconds\": %.9f, \"loop_cpu_seconds\": %.9f, \"cycles\": %llu}\n", loop, cpu,
                     static_cast<unsigned long long>(edges));
        std::fclose(f);
    }
    if (!done) {
        std::fprintf(stderr, "harness_main: `done` did not rise within %llu rising edges after the reset%s\n",
                     static_cast<unsigned long long>(max_edges), ctx->gotFinish() ? " ($finish)" : "");
        return 2;
    }
    std::printf("harness_main: done after %llu rising edges, %.6f s\n", static_cast<unsigned long long>(edges),
                loop);
    return ctx->errorCount() > 0 ? 1 : 0;
}
