% zkaudit compliance pack: telecoms availability.
%
% Evidence (event types and metadata):
%   service_down / service_up / service_check   meta: service
%   service_endpoint                            meta: service, ip, port (then the
%                                               recorded network_flow events to
%                                               ip:port count: refused or
%                                               unanswered = down, else up)
%   capacity_report                             meta: service, required (N), available
%   failover                                    meta: service, duration_ms
%
% Protocol: pack/3, param/2, rule/2, check(Rule, Used, Violations) with
% Violations = [violation(LeafIndex, Reason), ...]; thresholds via pval/2.

:- discontiguous(check/3).
:- discontiguous(measure/3).

pack(telecoms, '1.0.0', 'Telecoms availability: five-nines uptime, N+2 redundancy, failover time').

param(min_uptime_percent, 99.999).
param(min_spare_units, 2).
param(max_failover_ms, 50).

rule(uptime, 'Every monitored service is up at least min_uptime_percent of its measured span').
rule(redundancy, 'Every capacity report shows at least min_spare_units units beyond the N required (N+2)').
rule(failover, 'Every failover completes within max_failover_ms milliseconds').

check(uptime, Used, Violations) :-
    pval(min_uptime_percent, Min),
    availability_check(Min, uptime, Used, Violations).

check(redundancy, Used, Violations) :-
    pval(min_spare_units, Spare),
    findall(I, event(I, _, _, capacity_report, _, _), Used),
    findall(violation(I, spare_units(S, Have, min(Spare))),
            ( member(I, Used),
              '$meta'(I, service, S), '$meta'(I, required, N), '$meta'(I, available, A),
              Have is A - N, Have < Spare ),
            Violations).

check(failover, Used, Violations) :-
    pval(max_failover_ms, Max),
    threshold_check(failover, duration_ms, Max, failover_ms, Used, Violations).

% What each rule measured, for reports and the SOC dashboard.
measure(uptime, min_uptime_percent, P) :- min_availability(P).
measure(redundancy, min_spare_units, S) :-
    findall(H, ( event(I, _, _, capacity_report, _, _), '$meta'(I, required, N), '$meta'(I, available, A), H is A - N ), Hs),
    Hs \== [],
    min_of(Hs, S).
measure(failover, max_failover_ms, M) :- max_meta(failover, duration_ms, M).
