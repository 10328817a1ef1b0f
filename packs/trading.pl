% zkaudit compliance pack: trading.
%
% Evidence (event types and metadata):
%   order_submitted / order_executed   meta: desk, order_id; order_executed also latency_ns
%   info_access                        meta: desk (who read), source_desk (whose
%                                      information), tenant, source_tenant (optional)
%
% Timestamp precision is that of the event's own RFC 3339 timestamp.

:- discontiguous(check/3).
:- discontiguous(measure/3).

pack(trading, '1.0.0', 'Trading controls: execution latency, timestamp precision, information barriers').

param(max_latency_ns, 1000000).
param(max_timestamp_precision_ns, 1000).
param(walls, [research-trading, research-sales, proprietary-client]).

rule(latency, 'Every order is executed within max_latency_ns nanoseconds').
rule(timestamp_precision, 'Every order event is timestamped to max_timestamp_precision_ns or finer').
rule(segregation, 'No access crosses a declared wall between desks, nor a tenant boundary').

check(latency, Used, Violations) :-
    pval(max_latency_ns, Max),
    threshold_check(order_executed, latency_ns, Max, latency_ns, Used, Violations).

check(timestamp_precision, Used, Violations) :-
    pval(max_timestamp_precision_ns, Max),
    findall(I, ( member(Ty, [order_submitted, order_executed]), event(I, _, _, Ty, _, _) ), Used0),
    sort(Used0, Used),
    findall(violation(I, precision_ns(P, max(Max), Text)),
            ( member(I, Used), '$stamp'(I, Text, P), P > Max ),
            Violations).

check(segregation, Used, Violations) :-
    pval(walls, Walls),
    findall(I, event(I, _, _, info_access, _, _), Used),
    findall(violation(I, Reason),
            ( member(I, Used), '$crosses'(I, Walls, Reason) ),
            Violations).

'$crosses'(I, Walls, wall(D1, D2)) :-
    '$meta'(I, desk, D1), '$meta'(I, source_desk, D2),
    ( memberchk(D1-D2, Walls) ; memberchk(D2-D1, Walls) ), !.
'$crosses'(I, _, tenant(T1, T2)) :-
    '$meta'(I, tenant, T1), '$meta'(I, source_tenant, T2), T1 \== T2.

% What each rule measured, for reports and the SOC dashboard.
measure(latency, max_latency_ns, M) :- max_meta(order_executed, latency_ns, M).
measure(timestamp_precision, orders, N) :- count_events(order_executed, N).
