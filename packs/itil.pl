% zkaudit compliance pack: ITIL service management.
%
% Evidence (event types and metadata):
%   incident_opened / incident_responded    meta: incident_id, priority
%   change_implemented / cab_approved       meta: change_id
%   service_down / service_up / service_check   meta: service

:- discontiguous(check/3).
:- discontiguous(measure/3).

pack(itil, '1.0.0', 'ITIL: incident response time, CAB change approval, service availability').

param(max_response_minutes, 15).
param(min_availability_percent, 99.99).

rule(incident_response, 'Every incident gets a first response within max_response_minutes').
rule(change_approval, 'Every change is approved by the change advisory board before implementation').
rule(availability, 'Every service is available at least min_availability_percent of its measured span').

check(incident_response, Used, Violations) :-
    pval(max_response_minutes, Max),
    MaxNs is Max * 60 * 1000000000,
    findall(I, event(I, _, _, incident_opened, _, _), Opened),
    findall(r(Js, V),
            ( member(I, Opened), '$ev'(I, T0, _, _, _, _), '$meta'(I, incident_id, Id),
              findall(T-J, ( event(J, T, _, incident_responded, _, _), '$meta'(J, incident_id, Id) ), Rs),
              (   Rs == [] -> Js = [I], V = violation(I, no_response(Id))
              ;   keysort(Rs, [T1-J1|_]), Js = [I, J1],
                  Min is (T1 - T0) / 60000000000.0,
                  (   T1 - T0 > MaxNs -> V = violation(I, response_minutes(Id, Min, max(Max))) ; V = ok )
              ) ),
            Results),
    findall(J, ( member(r(Js, _), Results), member(J, Js) ), Used0),
    sort(Used0, Used),
    findall(violation(I, R), member(r(_, violation(I, R)), Results), Violations).

check(change_approval, Used, Violations) :-
    findall(I, event(I, _, _, change_implemented, _, _), Impl),
    findall(r(Js, V),
            ( member(I, Impl), '$ev'(I, TI, _, _, _, _), '$meta'(I, change_id, C),
              findall(T-J, ( event(J, T, _, cab_approved, _, _), '$meta'(J, change_id, C) ), Ap),
              findall(J, member(_-J, Ap), Js0), Js = [I|Js0],
              (   Ap == [] -> V = violation(I, no_cab_approval(C))
              ;   keysort(Ap, [TA-_|_]), TA > TI -> V = violation(I, implemented_before_cab_approval(C))
              ;   V = ok
              ) ),
            Results),
    findall(J, ( member(r(Js, _), Results), member(J, Js) ), Used0),
    sort(Used0, Used),
    findall(violation(I, R), member(r(_, violation(I, R)), Results), Violations).

check(availability, Used, Violations) :-
    pval(min_availability_percent, Min),
    availability_check(Min, availability, Used, Violations).

% What each rule measured, for reports and the SOC dashboard.
measure(incident_response, mean_response_minutes, M) :-
    findall(Min,
            ( event(I, T0, _, incident_opened, _, _), '$meta'(I, incident_id, Id),
              findall(T, ( event(J, T, _, incident_responded, _, _), '$meta'(J, incident_id, Id) ), Ts),
              Ts \== [], min_of(Ts, T1), Min is (T1 - T0) / 60000000000.0 ),
            Ms),
    Ms \== [],
    sum_of(Ms, S), length(Ms, N), M is S / N.
measure(change_approval, changes_implemented, N) :- count_events(change_implemented, N).
measure(availability, min_availability_percent, P) :- min_availability(P).
