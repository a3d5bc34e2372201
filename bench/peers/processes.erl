#!/usr/bin/env escript
%%! +S 2:2 +P 4194304 -noinput
%% The Erlang/OTP peer of B3 (instance-footprint) and B13 (scale-soak): process creation rate
%% and the memory of idle processes, on 2 schedulers like the CAF side.
%%
%%   escript processes.erl rate N WINDOW   spawn N processes that exit at once, WINDOW in
%%                                         flight at most; prints {"rate_per_s": R}
%%   escript processes.erl idle N          spawn N processes waiting in `receive`, then
%%                                         prints {"rss_delta": B, "bytes_per_process": B/N,
%%                                         "process_memory_per_process": ...} and stops them
%%
%% Memory is the OS resident set delta of this VM (/proc/self/statm) around the spawns, and
%% erlang:memory(processes) for the VM's own count. The parent's list of N pids (2 words per
%% process) is part of both, as the handle vector is on the C++ side.
-mode(compile).

main(["rate", NS, WS]) ->
    N = list_to_integer(NS),
    W = list_to_integer(WS),
    rate(1000, W), % warm-up
    T0 = erlang:monotonic_time(nanosecond),
    rate(N, W),
    T1 = erlang:monotonic_time(nanosecond),
    io:format("{\"rate_per_s\": ~.3f, \"processes\": ~b}~n", [N * 1.0e9 / (T1 - T0), N]);
main(["idle", NS]) ->
    N = list_to_integer(NS),
    erlang:garbage_collect(),
    R0 = rss(),
    M0 = erlang:memory(processes),
    Pids = spawn_idle(N, []),
    wait_all_waiting(Pids),
    R1 = rss(),
    M1 = erlang:memory(processes),
    [P ! stop || P <- Pids],
    io:format("{\"rss_delta\": ~b, \"bytes_per_process\": ~.1f, "
              "\"process_memory_per_process\": ~.1f, \"processes\": ~b}~n",
              [R1 - R0, (R1 - R0) / N, (M1 - M0) / N, N]);
main(_) ->
    io:format(standard_error, "usage: processes.erl rate N WINDOW | idle N~n", []),
    halt(2).

%% N processes that exit at once, each telling the parent; at most W in flight.
rate(0, _) -> ok;
rate(N, W) ->
    B = min(N, W),
    Self = self(),
    spawn_batch(B, Self),
    collect(B),
    rate(N - B, W).

spawn_batch(0, _) -> ok;
spawn_batch(K, Parent) ->
    spawn(fun() -> Parent ! done end),
    spawn_batch(K - 1, Parent).

collect(0) -> ok;
collect(K) -> receive done -> collect(K - 1) end.

spawn_idle(0, Acc) -> Acc;
spawn_idle(N, Acc) -> spawn_idle(N - 1, [spawn(fun idle/0) | Acc]).

idle() -> receive stop -> ok end.

%% Every process has run up to its receive (none still runnable).
wait_all_waiting([]) -> ok;
wait_all_waiting([P | Rest] = All) ->
    case erlang:process_info(P, status) of
        {status, waiting} -> wait_all_waiting(Rest);
        _ -> timer:sleep(10), wait_all_waiting(All)
    end.

rss() ->
    {ok, B} = file:read_file("/proc/self/statm"),
    [_, R | _] = string:split(string:trim(binary_to_list(B)), " ", all),
    list_to_integer(R) * 4096.
