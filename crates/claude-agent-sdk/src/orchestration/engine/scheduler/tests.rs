//! The scheduler on its own: no runtime, no agents, only steps and tokens.

use super::*;
use crate::orchestration::join_policy::JoinPolicy;

fn n(index: usize) -> NodeId {
    NodeId::from_index(index)
}

fn ok() -> Decision {
    Decision::default()
}

/// A graph of `count` nodes with `edges`.
fn graph(count: usize, edges: &[(usize, usize)]) -> Graph {
    let mut graph = Graph::new("graph", true);
    for _ in 0..count {
        graph.add_node();
    }
    for &(from, to) in edges {
        graph.add_edge(n(from), n(to));
    }
    graph
}

fn node_of(scheduler: &Scheduler, step: StepId) -> NodeId {
    scheduler.step(step).unwrap().node
}

#[test]
fn a_chain_runs_one_node_after_another() {
    let mut scheduler = Scheduler::new(Graph::chain(3), 10, usize::MAX);
    assert_eq!(scheduler.next(), Some(n(0)));
    assert_eq!(scheduler.next(), None, "node 1 waits for node 0");
    scheduler.complete(n(0), Completion::Succeeded, &ok());
    assert_eq!(scheduler.next(), Some(n(1)));
    assert_eq!(
        scheduler.step(n(1)).unwrap().input,
        StepInput::OutputOf(n(0))
    );
    scheduler.complete(n(1), Completion::Succeeded, &ok());
    assert_eq!(scheduler.next(), Some(n(2)));
    assert!(!scheduler.is_finished());
    scheduler.complete(n(2), Completion::Succeeded, &ok());
    assert!(scheduler.is_finished());
    assert!(scheduler.completed_all());
}

#[test]
fn a_failure_skips_everything_after_it() {
    let mut scheduler = Scheduler::new(Graph::chain(4), 10, usize::MAX);
    assert_eq!(scheduler.next(), Some(n(0)));
    scheduler.complete(n(0), Completion::Failed, &ok());
    assert_eq!(scheduler.next(), None);
    assert!(scheduler.is_finished());
    assert!(scheduler.completed_all(), "the rest was skipped");
    assert_eq!(scheduler.steps().len(), 1);
}

#[test]
fn a_fan_out_never_runs_more_than_the_limit() {
    let mut scheduler = Scheduler::new(Graph::fan_out(5), 2, usize::MAX);
    assert_eq!(scheduler.next(), Some(n(0)));
    assert_eq!(scheduler.next(), Some(n(1)));
    assert_eq!(scheduler.next(), None, "the limit is reached");
    assert_eq!(scheduler.running(), 2);
    scheduler.complete(n(1), Completion::Failed, &ok());
    assert_eq!(
        scheduler.next(),
        Some(n(2)),
        "a sibling's failure stops nothing"
    );
    scheduler.complete(n(0), Completion::Succeeded, &ok());
    scheduler.complete(n(2), Completion::Succeeded, &ok());
    assert_eq!(scheduler.next(), Some(n(3)));
    assert_eq!(scheduler.next(), Some(n(4)));
    scheduler.complete(n(3), Completion::Succeeded, &ok());
    assert!(!scheduler.completed_all());
    scheduler.complete(n(4), Completion::Interrupted, &ok());
    assert!(scheduler.is_finished());
    assert!(!scheduler.completed_all(), "node 4 was cut short");
}

#[test]
fn completions_of_steps_not_running_are_ignored() {
    let mut scheduler = Scheduler::new(Graph::fan_out(2), 1, usize::MAX);
    scheduler.complete(n(7), Completion::Succeeded, &ok());
    assert_eq!(scheduler.running(), 0);
    assert_eq!(scheduler.next(), Some(n(0)));
    scheduler.complete(n(0), Completion::Succeeded, &ok());
    scheduler.complete(n(0), Completion::Failed, &ok());
    assert_eq!(scheduler.ended(n(0)), Some(Completion::Succeeded));
    assert_eq!(scheduler.running(), 0);
}

#[test]
fn a_limit_of_zero_still_lets_one_node_run() {
    let mut scheduler = Scheduler::new(Graph::fan_out(2), 0, usize::MAX);
    assert!(scheduler.next().is_some());
    assert!(scheduler.next().is_none());
}

#[test]
fn a_fast_branch_moves_on_while_its_slow_sibling_runs() {
    // 0 → 1 → 2 → 3 (fast) and 0 → 4 (slow); 3 and 4 join in 5.
    let mut scheduler = Scheduler::new(
        graph(6, &[(0, 1), (1, 2), (2, 3), (0, 4), (3, 5), (4, 5)]),
        10,
        usize::MAX,
    );
    let first = scheduler.next().unwrap();
    scheduler.complete(first, Completion::Succeeded, &ok());
    let (a, b) = (scheduler.next().unwrap(), scheduler.next().unwrap());
    let slow = if node_of(&scheduler, a) == n(4) { a } else { b };
    let mut fast = if slow == a { b } else { a };
    for expected in [2, 3] {
        scheduler.complete(fast, Completion::Succeeded, &ok());
        fast = scheduler.next().unwrap();
        assert_eq!(node_of(&scheduler, fast), n(expected));
    }
    scheduler.complete(fast, Completion::Succeeded, &ok());
    assert_eq!(scheduler.next(), None, "the join waits for the slow branch");
    scheduler.complete(slow, Completion::Succeeded, &ok());
    let join = scheduler.next().unwrap();
    assert_eq!(node_of(&scheduler, join), n(5));
    assert_eq!(
        scheduler.step(join).unwrap().input,
        StepInput::Gathered(vec![fast, slow]),
        "gathered in predecessor order"
    );
}

#[test]
fn a_router_skips_the_branches_it_did_not_choose_and_their_join_still_runs() {
    // 0 routes to 1 or 2; both lead to 3.
    let mut graph = graph(4, &[(0, 1), (0, 2), (1, 3), (2, 3)]);
    graph.node_mut(n(0)).unwrap().routed = true;
    let mut scheduler = Scheduler::new(graph, 10, usize::MAX);
    let root = scheduler.next().unwrap();
    scheduler.complete(
        root,
        Completion::Succeeded,
        &Decision {
            routes: Some(vec![n(2)]),
            ..Decision::default()
        },
    );
    let chosen = scheduler.next().unwrap();
    assert_eq!(node_of(&scheduler, chosen), n(2));
    assert_eq!(scheduler.next(), None);
    scheduler.complete(chosen, Completion::Succeeded, &ok());
    let after = scheduler.next().unwrap();
    assert_eq!(node_of(&scheduler, after), n(3));
    assert_eq!(
        scheduler.step(after).unwrap().input,
        StepInput::OutputOf(chosen),
        "one branch ran: its output as it is"
    );
    scheduler.complete(after, Completion::Succeeded, &ok());
    assert!(scheduler.completed_all());
}

#[test]
fn a_join_at_least_k_runs_once_k_succeeded_and_skips_once_k_cannot() {
    let mut graph = graph(4, &[(0, 3), (1, 3), (2, 3)]);
    graph.node_mut(n(3)).unwrap().join = JoinPolicy::AtLeast(2);
    let mut scheduler = Scheduler::new(graph.clone(), 10, usize::MAX);
    for _ in 0..3 {
        scheduler.next().unwrap();
    }
    scheduler.complete(n(0), Completion::Failed, &ok());
    scheduler.complete(n(1), Completion::Succeeded, &ok());
    assert_eq!(scheduler.next(), None);
    scheduler.complete(n(2), Completion::Succeeded, &ok());
    assert_eq!(scheduler.next().map(|s| node_of(&scheduler, s)), Some(n(3)));

    let mut scheduler = Scheduler::new(graph, 10, usize::MAX);
    for _ in 0..3 {
        scheduler.next().unwrap();
    }
    scheduler.complete(n(0), Completion::Failed, &ok());
    scheduler.complete(n(1), Completion::Failed, &ok());
    scheduler.complete(n(2), Completion::Succeeded, &ok());
    assert!(
        scheduler.is_finished(),
        "two failures out of three: never satisfied"
    );
    assert!(scheduler.completed_all());
}

#[test]
fn a_loop_goes_round_until_told_to_stop_and_never_past_its_bound() {
    // 0 → 1 → 2, loop 2 → 1 at most 3 iterations, 2 → 3 after it.
    let mut graph = graph(4, &[(0, 1), (1, 2), (2, 3)]);
    assert!(graph.add_loop(n(2), n(1), 3));
    let mut scheduler = Scheduler::new(graph, 10, usize::MAX);
    let first = scheduler.next().unwrap();
    scheduler.complete(first, Completion::Succeeded, &ok());
    let again = Decision {
        again: true,
        ..Decision::default()
    };
    let mut iterations = 0;
    loop {
        let body = scheduler.next().unwrap();
        assert_eq!(node_of(&scheduler, body), n(1));
        iterations += 1;
        assert_eq!(scheduler.step(body).unwrap().iteration, iterations);
        scheduler.complete(body, Completion::Succeeded, &ok());
        let last = scheduler.next().unwrap();
        assert_eq!(node_of(&scheduler, last), n(2));
        scheduler.complete(last, Completion::Succeeded, &again.clone());
        let next = scheduler.next().unwrap();
        if node_of(&scheduler, next) == n(3) {
            assert_eq!(
                scheduler.step(next).unwrap().input,
                StepInput::OutputOf(last)
            );
            break;
        }
        assert_eq!(
            scheduler.step(next).unwrap().input,
            StepInput::OutputOf(last),
            "the loop's first node gets the last node's output"
        );
        // Put it back: the loop body starts from `next`.
        scheduler.ready.push_front(next);
        scheduler.running -= 1;
    }
    assert_eq!(
        iterations, 3,
        "the bound holds even when the loop asks for more"
    );
}

#[test]
fn a_loop_node_also_fed_from_outside_the_loop_keeps_that_input_on_every_pass() {
    // 0 → 1, 0 → 2, 1 → 2; loop 2 → 1 at most 3 iterations, 2 → 3 after it.
    // Node 2 joins node 0 (outside the loop, run once) and node 1 (inside).
    let mut graph = graph(4, &[(0, 1), (0, 2), (1, 2), (2, 3)]);
    assert!(graph.add_loop(n(2), n(1), 3));
    let mut scheduler = Scheduler::new(graph, 10, usize::MAX);
    let outside = scheduler.next().unwrap();
    scheduler.complete(outside, Completion::Succeeded, &ok());
    let again = Decision {
        again: true,
        ..Decision::default()
    };
    for iteration in 1..=3 {
        let body = scheduler.next().unwrap();
        assert_eq!(node_of(&scheduler, body), n(1), "pass {iteration}");
        assert_eq!(scheduler.next(), None, "node 2 waits for node 1");
        scheduler.complete(body, Completion::Succeeded, &ok());
        let join = scheduler.next().unwrap();
        assert_eq!(node_of(&scheduler, join), n(2), "pass {iteration}");
        assert_eq!(
            scheduler.step(join).unwrap().input,
            StepInput::Gathered(vec![outside, body]),
            "node 0's output, kept, and this pass's node 1's"
        );
        scheduler.complete(join, Completion::Succeeded, &again.clone());
    }
    let after = scheduler.next().unwrap();
    assert_eq!(node_of(&scheduler, after), n(3));
    scheduler.complete(after, Completion::Succeeded, &ok());
    assert!(scheduler.is_finished());
    assert!(scheduler.completed_all());
}

#[test]
fn a_map_runs_one_step_per_item_and_completes_when_they_all_have() {
    let mut graph = graph(3, &[(0, 1), (1, 2)]);
    graph.node_mut(n(1)).unwrap().map = true;
    let mut scheduler = Scheduler::new(graph, 2, usize::MAX);
    let first = scheduler.next().unwrap();
    scheduler.complete(first, Completion::Succeeded, &ok());
    let map = scheduler.next().unwrap();
    assert_eq!(scheduler.step(map).unwrap().kind, StepKind::Map);
    scheduler.expand(map, 3);
    let (a, b) = (scheduler.next().unwrap(), scheduler.next().unwrap());
    assert_eq!(scheduler.next(), None, "items respect the limit");
    assert_eq!(
        scheduler.step(b).unwrap().input,
        StepInput::Item { map, index: 1 }
    );
    scheduler.complete(b, Completion::Succeeded, &ok());
    let c = scheduler.next().unwrap();
    scheduler.complete(c, Completion::Succeeded, &ok());
    assert!(scheduler.take_gathered().is_empty());
    scheduler.complete(a, Completion::Succeeded, &ok());
    assert_eq!(scheduler.take_gathered(), [map]);
    assert_eq!(scheduler.items_of(map), [a, b, c]);
    let last = scheduler.next().unwrap();
    assert_eq!(
        scheduler.step(last).unwrap().input,
        StepInput::OutputOf(map)
    );
}

#[test]
fn an_empty_map_succeeds_at_once() {
    let mut graph = graph(2, &[(0, 1)]);
    graph.node_mut(n(0)).unwrap().map = true;
    let mut scheduler = Scheduler::new(graph, 2, usize::MAX);
    let map = scheduler.next().unwrap();
    scheduler.expand(map, 0);
    assert_eq!(scheduler.ended(map), Some(Completion::Succeeded));
    assert!(scheduler.next().is_some());
}

#[test]
fn the_step_limit_stops_the_run_and_names_the_node_it_refused() {
    let mut graph = graph(3, &[(0, 1), (1, 2)]);
    assert!(graph.add_loop(n(2), n(1), u32::MAX));
    let mut scheduler = Scheduler::new(graph, 1, 9);
    let again = Decision {
        again: true,
        ..Decision::default()
    };
    while let Some(step) = scheduler.next() {
        scheduler.complete(step, Completion::Succeeded, &again.clone());
    }
    assert_eq!(scheduler.steps().len(), 9);
    assert!(scheduler.is_finished());
    assert!(!scheduler.completed_all());
    assert_eq!(scheduler.runaway(), Some(n(1)));
}

/// Runs the ready steps one at a time, each succeeding with what `decide`
/// says for its node and iteration, until nothing is left; returns the
/// nodes in the order they ran.
fn walk(scheduler: &mut Scheduler, decide: impl Fn(NodeId, u32) -> Decision) -> Vec<usize> {
    let mut ran = Vec::new();
    while let Some(step) = scheduler.next() {
        let info = scheduler.step(step).unwrap().clone();
        ran.push(info.node.index());
        scheduler.complete(
            step,
            Completion::Succeeded,
            &decide(info.node, info.iteration),
        );
    }
    ran
}

fn again(again: bool) -> Decision {
    Decision {
        again,
        ..Decision::default()
    }
}

#[test]
fn a_loop_inside_a_loop_goes_round_again_on_every_outer_pass() {
    // 0 → 1 → 2 → 3; 2 loops back to 1 (inner), 3 back to 0 (outer), twice each.
    let mut graph = graph(4, &[(0, 1), (1, 2), (2, 3)]);
    assert!(graph.add_loop(n(2), n(1), 2));
    assert!(graph.add_loop(n(3), n(0), 2));
    let mut scheduler = Scheduler::new(graph, 10, usize::MAX);
    let iterations = std::cell::RefCell::new(Vec::new());
    let ran = walk(&mut scheduler, |node, iteration| {
        if node == n(2) {
            iterations.borrow_mut().push(iteration);
        }
        again(node == n(2) || node == n(3))
    });
    assert_eq!(ran, [0, 1, 2, 1, 2, 3, 0, 1, 2, 1, 2, 3]);
    assert_eq!(
        *iterations.borrow(),
        [1, 2, 1, 2],
        "the inner loop counts its passes from 1 on each outer pass"
    );
    assert!(scheduler.completed_all());
}

#[test]
fn a_router_in_a_loop_may_take_a_branch_an_earlier_pass_skipped() {
    // 0 routes to 1 (work, which loops back to 0) or 2 (exit).
    let mut graph = graph(3, &[(0, 1), (0, 2)]);
    graph.node_mut(n(0)).unwrap().routed = true;
    assert!(graph.add_loop(n(1), n(0), 5));
    let mut scheduler = Scheduler::new(graph, 10, usize::MAX);
    let ran = walk(&mut scheduler, |node, iteration| match node.index() {
        0 => Decision {
            routes: Some(vec![if iteration < 3 { n(1) } else { n(2) }]),
            ..Decision::default()
        },
        1 => again(true),
        _ => ok(),
    });
    assert_eq!(ran, [0, 1, 0, 1, 0, 2], "the exit runs on the third pass");
    assert!(scheduler.completed_all());
}
