// Command-playing harness for a system of chips (rtl/system.py `System`), one host edge per chip.
//
// No per-cycle Python: like sim/hdl/chip_harness.sv, but with N_CHIPS host edges played at once. Each edge
// (module `host_edge` below) reads its own list of host commands ($readmemh of cmds<c>.hex at time 0),
// offers them on its chip's `cmd<c>` stream with its own pseudo-random valid pattern, accepts `resp<c>` with
// its own pseudo-random ready pattern and stores every response (resps<c>.hex). The top (`system_harness`)
// watches the system's status ports and captures them in the cycle the system's `done` rises; when every
// edge has sent every command and stored every expected response (and the system is not running) it raises
// `done`; the responses and the status are written to files when the simulation ends.
// Whoever runs it only clocks it, drives the harness reset `rst` and waits for `done`: sim.verilator's native
// C++ main sim/hdl/harness_main.cpp (SystemSimulator clock="harness", the fastest: no cocotb, no --timing) or
// cocotb (cocotb_tests/tb_system.py; clock="gpi": cocotb's GPI clock). With SYSTEM_HARNESS_CLOCK defined and
// --timing the harness makes its own clock instead (SystemSimulator's fallback where sim.verilator has no
// native main).
//
// The DUT is reached through `system_ports`, a module generated per chip count by sim/system_verilator.py:
// it only renames the System's per-chip ports (cmd0__valid, cmd1__valid, …) to vectors indexed by chip
// (cmd_valid[c], cmd_payload[c*CMD_BITS +: CMD_BITS], …), so that this file can use a generate loop.
//
// Streams (amaranth.lib.stream): a transfer happens in a cycle where valid and ready are both high. An edge
// holds `valid` and the payload once it has offered a command, until it is taken; `valid` and `ready` are
// drawn from registers only (one xorshift32 generator per edge), never from the DUT's outputs in the same
// cycle. Edge c's generator starts from `seed` mixed with c (edge_seed below), so the patterns differ
// per chip for one +seed.
//   +valid_pct<c>=N : edge c, when not already holding a command, offers the next one with probability N %.
//   +ready_pct<c>=N : edge c's `resp.ready` is high with probability N % each cycle.
//   (+valid_pct=N / +ready_pct=N: the default for every edge without its own.)
// Unlike the chip harness there is no harness command (op 7): every command goes to the chip (the Python
// side refuses op 7).
//
// Plusargs: +run_dir=DIR (cmds<c>.hex in; resps<c>.hex, status.hex out), +ncmds<c>=N, +nresp<c>=N, +seed=N,
//           +valid_pct[<c>]=N, +ready_pct[<c>]=N, +max_cycles=N (give up: status says timeout).
// status.hex (64-bit words):
//   [0] harness cycles run (from the release of the reset to `done`), [1] timeout flag,
//   [2] times the system's `done` rose, [3] harness cycle of the first rise of the system's `running`,
//   [4] harness cycle of the first rise of `done`, then the system's ports captured in that cycle:
//   [5] cycles, [6] error, [7] err_chip, [8] err_cycle; [9] magic;
//   then per chip c: [10 + 2c] responses stored, [11 + 2c] commands sent.

module host_edge #(
    parameter int CHIP       = 0,
    parameter int CMD_BITS   = 64,
    parameter int RESP_BITS  = 64,
    parameter int DEPTH      = 4096,   // command memory depth
    parameter int RESP_DEPTH = 4096    // response memory depth
) (
    input  logic                 clk,
    input  logic                 hrst,          // the harness reset (registered by the top)
    input  logic                 stop,          // the harness is done: freeze
    output logic                 cmd_valid,
    input  logic                 cmd_ready,
    output logic [CMD_BITS-1:0]  cmd_payload,
    input  logic                 resp_valid,
    output logic                 resp_ready,
    input  logic [RESP_BITS-1:0] resp_payload,
    output logic                 finished,      // every command sent and every expected response stored
    output logic [31:0]          n_sent,
    output logic [31:0]          n_got
);
    localparam int AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;
    localparam int RW = (RESP_DEPTH > 1) ? $clog2(RESP_DEPTH) : 1;

    logic [CMD_BITS-1:0]  cmd_mem  [0:DEPTH-1];
    logic [RESP_BITS-1:0] resp_mem [0:RESP_DEPTH-1];

    string       run_dir;
    int unsigned n_cmds, n_resp, seed, valid_pct, ready_pct;

    initial begin
        if (!$value$plusargs("run_dir=%s", run_dir)) run_dir = ".";
        if (!$value$plusargs($sformatf("ncmds%0d=%%d", CHIP), n_cmds)) n_cmds = 0;
        if (!$value$plusargs($sformatf("nresp%0d=%%d", CHIP), n_resp)) n_resp = 0;
        if (!$value$plusargs("seed=%d", seed)) seed = 1;
        if (!$value$plusargs($sformatf("valid_pct%0d=%%d", CHIP), valid_pct))
            if (!$value$plusargs("valid_pct=%d", valid_pct)) valid_pct = 100;
        if (!$value$plusargs($sformatf("ready_pct%0d=%%d", CHIP), ready_pct))
            if (!$value$plusargs("ready_pct=%d", ready_pct)) ready_pct = 100;
        if (n_cmds > DEPTH || n_resp > RESP_DEPTH) begin
            $display("system_harness: chip %0d: +ncmds%0d=%0d / +nresp%0d=%0d exceed DEPTH=%0d / RESP_DEPTH=%0d",
                     CHIP, CHIP, n_cmds, CHIP, n_resp, DEPTH, RESP_DEPTH);
            $fatal(1);
        end
        if (n_cmds > 0) $readmemh($sformatf("%s/cmds%0d.hex", run_dir, CHIP), cmd_mem, 0, n_cmds - 1);
    end

    // ---- pseudo-random patterns ---------------------------------------------------------------------
    function automatic logic [31:0] xorshift(input logic [31:0] x);
        logic [31:0] y = x;
        y = y ^ (y << 13);
        y = y ^ (y >> 17);
        y = y ^ (y << 5);
        return y;
    endfunction
    logic [31:0] edge_seed;               // seed mixed with the chip index (never 0: xorshift's fixed point)
    assign edge_seed = xorshift(seed ^ (32'h9E37_79B9 * 32'(CHIP + 1)));
    logic [31:0] rng, rng_v, rng_r;
    assign rng_v = xorshift(rng);
    assign rng_r = xorshift(rng_v);

    // ---- command side -----------------------------------------------------------------------------------
    logic [31:0] idx;                     // next command to send
    logic        holding;                 // the current command is offered and not yet taken
    logic        have;
    assign have        = !hrst && (idx < n_cmds);
    assign cmd_payload = cmd_mem[idx[AW-1:0]];
    assign cmd_valid   = have && !stop && (holding || (rng_v % 100) < valid_pct);
    assign n_sent      = idx;

    // ---- response side ----------------------------------------------------------------------------------
    assign resp_ready = !hrst && !stop && (rng_r % 100) < ready_pct;
    assign finished   = !hrst && idx >= n_cmds && n_got >= n_resp;

    always_ff @(posedge clk) begin
        if (hrst) begin
            idx     <= '0;
            holding <= 1'b0;
            n_got   <= '0;
            rng     <= (edge_seed == 0) ? 32'h1 : edge_seed;
        end else if (!stop) begin
            rng <= rng_r;
            holding <= cmd_valid && !cmd_ready;
            if (cmd_valid && cmd_ready) idx <= idx + 1;
            if (resp_valid && resp_ready) begin
                if (n_got < RESP_DEPTH) resp_mem[n_got[RW-1:0]] <= resp_payload;
                n_got <= n_got + 1;
            end
        end
    end
    final begin
        if (stop && n_got != 0)
            $writememh($sformatf("%s/resps%0d.hex", run_dir, CHIP), resp_mem, 0,
                       (n_got < RESP_DEPTH ? n_got : RESP_DEPTH) - 1);
    end
endmodule


module system_harness #(
    parameter int N_CHIPS    = 2,
    parameter int CMD_BITS   = 64,
    parameter int RESP_BITS  = 64,
    parameter int DEPTH      = 4096,
    parameter int RESP_DEPTH = 4096
) (
`ifdef SYSTEM_HARNESS_CLOCK
    input  logic rst  /*verilator public_flat_rw*/,
`else
    input  logic clk  /*verilator public_flat_rw*/,
    input  logic rst  /*verilator public_flat_rw*/,
`endif
    output logic done /*verilator public_flat_rd*/
);
`ifdef SYSTEM_HARNESS_CLOCK
    logic clk /*verilator public_flat_rd*/;
    initial clk = 1'b0;
    always #5 clk = ~clk;
`endif
    localparam int STATUS_WORDS = 10 + 2 * N_CHIPS;
    localparam logic [63:0] MAGIC = 64'h5359_5354_0000_0001;   // "SYST" v1

    logic [63:0] status_mem [0:STATUS_WORDS-1];
    string       run_dir;
    int unsigned max_cycles;
    initial begin
        if (!$value$plusargs("run_dir=%s", run_dir)) run_dir = ".";
        if (!$value$plusargs("max_cycles=%d", max_cycles)) max_cycles = 1000000;
    end

    logic hrst = 1'b1;                 // registered harness reset (nothing combinational from `rst`)
    always_ff @(posedge clk) hrst <= rst;

    // ---- the system and its host edges ------------------------------------------------------------------
    logic [N_CHIPS-1:0]           cmd_valid, cmd_ready, resp_valid, resp_ready, finished;
    logic [N_CHIPS*CMD_BITS-1:0]  cmd_payload;
    logic [N_CHIPS*RESP_BITS-1:0] resp_payload;
    logic [31:0]                  n_sent [0:N_CHIPS-1];
    logic [31:0]                  n_got  [0:N_CHIPS-1];
    logic                         sys_running, sys_done, sys_error;
    logic [31:0]                  sys_cycles, sys_err_cycle;
    logic [2:0]                   sys_err_chip;

    system_ports dut (
        .clk (clk), .rst (hrst),
        .cmd_valid (cmd_valid), .cmd_ready (cmd_ready), .cmd_payload (cmd_payload),
        .resp_valid (resp_valid), .resp_ready (resp_ready), .resp_payload (resp_payload),
        .running (sys_running), .done (sys_done), .error (sys_error), .cycles (sys_cycles),
        .err_chip (sys_err_chip), .err_cycle (sys_err_cycle)
    );

    genvar c;
    generate
        for (c = 0; c < N_CHIPS; c++) begin : edges
            host_edge #(.CHIP(c), .CMD_BITS(CMD_BITS), .RESP_BITS(RESP_BITS), .DEPTH(DEPTH),
                        .RESP_DEPTH(RESP_DEPTH)) edge_c (
                .clk (clk), .hrst (hrst), .stop (done),
                .cmd_valid (cmd_valid[c]), .cmd_ready (cmd_ready[c]),
                .cmd_payload (cmd_payload[c*CMD_BITS +: CMD_BITS]),
                .resp_valid (resp_valid[c]), .resp_ready (resp_ready[c]),
                .resp_payload (resp_payload[c*RESP_BITS +: RESP_BITS]),
                .finished (finished[c]), .n_sent (n_sent[c]), .n_got (n_got[c])
            );
        end
    endgenerate

    // ---- the system's status, captured when `done` rises ------------------------------------------------
    logic [31:0] cyc /*verilator public_flat_rd*/;
    logic        done_q, running_q, started;
    logic [31:0] n_done_rises, start_cyc, done_cyc, cap_cycles, cap_err_cycle;
    logic        cap_error;
    logic [2:0]  cap_err_chip;
    initial begin
        done = 1'b0;
        cyc = '0;
    end

    always_ff @(posedge clk) begin
        if (hrst) begin
            done <= 1'b0;
            cyc <= '0;
            done_q <= 1'b0;
            running_q <= 1'b0;
            started <= 1'b0;
            n_done_rises <= '0;
            start_cyc <= '0;
            done_cyc <= '0;
            cap_cycles <= '0;
            cap_error <= 1'b0;
            cap_err_chip <= '0;
            cap_err_cycle <= '0;
        end else if (!done) begin
            cyc <= cyc + 1;
            done_q <= sys_done;
            running_q <= sys_running;
            if (sys_running && !running_q && !started) begin
                started <= 1'b1;
                start_cyc <= cyc;
            end
            if (sys_done && !done_q) begin
                n_done_rises <= n_done_rises + 1;
                if (n_done_rises == 0) begin
                    done_cyc <= cyc;
                    cap_cycles <= sys_cycles;
                    cap_error <= sys_error;
                    cap_err_chip <= sys_err_chip;
                    cap_err_cycle <= sys_err_cycle;
                end
            end
            // every edge finished, the system idle, and a rise of `done` (if any) already captured
            if ((&finished && !sys_running && !(sys_done && !done_q)) || cyc >= max_cycles) begin
                status_mem[0] = 64'(cyc);
                status_mem[1] = 64'(cyc >= max_cycles);
                status_mem[2] = 64'(n_done_rises);
                status_mem[3] = 64'(start_cyc);
                status_mem[4] = 64'(done_cyc);
                status_mem[5] = 64'(cap_cycles);
                status_mem[6] = 64'(cap_error);
                status_mem[7] = 64'(cap_err_chip);
                status_mem[8] = 64'(cap_err_cycle);
                status_mem[9] = MAGIC;
                for (int i = 0; i < N_CHIPS; i++) begin
                    status_mem[10 + 2 * i] = 64'(n_got[i]);
                    status_mem[11 + 2 * i] = 64'(n_sent[i]);
                end
                done <= 1'b1;
            end
        end
    end
    // Written when the simulation ends (the native main or cocotb ends it once `done` rises), as in
    // chip_harness.sv.
    final begin
        if (done) $writememh({run_dir, "/status.hex"}, status_mem);
    end
endmodule
