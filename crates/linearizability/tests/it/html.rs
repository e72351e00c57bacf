//! The HTML picture, rendered through the library (the CLI test covers `--html`).

use crate::common;

use common::*;
use linearizability::{
    DRAWN_OPERATIONS_MAX, KvModel, KvOutput, Unlimited, Verdict, check, render_html,
};

#[test]
fn huge_failing_partitions_draw_a_window_around_the_stuck_operation() {
    let mut operations: Vec<KvOperation> = (0..1000)
        .map(|step| {
            done(
                step % 5,
                step * 10,
                step * 10 + 15,
                append("k", "x"),
                KvOutput::Done,
            )
        })
        .collect();
    operations.push(done(
        9,
        20_000,
        20_010,
        get("k"),
        saw(Some("not what was appended")),
    ));
    operations.push(done(9, 30_000, 30_010, put("k", "later"), KvOutput::Done));
    let history = history(operations);
    let result = check(&KvModel::new(), &history, Unlimited);
    assert_eq!(result.verdict, Verdict::NotLinearizable);

    let page = render_html(&KvModel::new(), &history, &result);
    assert!(
        page.contains(&format!(
            "Showing {DRAWN_OPERATIONS_MAX} of 1002 operations"
        )),
        "the window is announced"
    );
    assert_eq!(
        page.matches("<g class=\"operation\">").count(),
        DRAWN_OPERATIONS_MAX
    );
    assert!(
        page.contains("class=\"stuck\""),
        "the stuck operation is in the window"
    );
    assert!(page.contains("stuck here"));
    assert!(
        page.contains("operation 1000 (client 9)"),
        "its tooltip names it"
    );
    assert!(
        page.contains("(970 earlier operations not listed)"),
        "the explanation is included"
    );
}

#[test]
fn linearizable_histories_draw_every_partition_up_to_the_limit() {
    let operations: Vec<KvOperation> = (0..3)
        .map(|key| {
            done(
                1,
                key * 10,
                key * 10 + 5,
                put(&format!("k{key}"), "v"),
                KvOutput::Done,
            )
        })
        .collect();
    let history = history(operations);
    let page = render_html(
        &KvModel::new(),
        &history,
        &check(&KvModel::new(), &history, Unlimited),
    );
    assert_eq!(page.matches("<section>").count(), 3);
    assert!(page.contains("<h1 class=\"linearizable\">"));
    assert!(!page.contains("Explanation"), "nothing to explain");
}

#[test]
fn text_from_the_history_is_escaped() {
    let history = history(vec![done(
        1,
        0,
        10,
        put("<script>", "\"&'"),
        KvOutput::Done,
    )]);
    let page = render_html(
        &KvModel::new(),
        &history,
        &check(&KvModel::new(), &history, Unlimited),
    );
    assert!(
        !page.contains("<script>"),
        "markup in keys must not reach the page"
    );
    assert!(page.contains("&lt;script&gt;"));
}
