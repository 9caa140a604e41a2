//! The service map drawn as SVG: layout-rs (crate `layout`, a Sugiyama-style layered layout)
//! places the nodes left to right; this module sizes the boxes for their text, draws them, the
//! edges and the legend.
//!
//! Each edge's label is laid out as a box of its own between its two nodes (the edge becomes
//! caller → label → callee), so the layout keeps labels apart from nodes and from each other
//! just as it keeps nodes apart. layout-rs draws through a [`RenderBackend`]: the one here only
//! records where boxes and paths went (by the properties each element was created with), and the
//! SVG is written from those records with the page's classes, text lines and legend.
//!
//! Text is set in a monospace font at [`FONT_PX`], so a line's width is its length times
//! [`CHAR_PX`] (an upper bound for DejaVu Sans Mono and Liberation Mono, both 0.6 em).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use layout::core::base::Orientation;
use layout::core::format::{ClipHandle, RenderBackend};
use layout::core::geometry::{Point, Position};
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, ShapeKind};
use layout::topo::layout::VisualGraph;

use super::data::{Health, MapData, MapNode};
use super::escape;
use crate::map::NodeKind;

/// Font size of every text on the map, px.
pub const FONT_PX: f64 = 12.0;
/// Advance of one character, px (0.6 em plus a margin).
pub const CHAR_PX: f64 = 7.4;
/// Line height, px.
const LINE_PX: f64 = 15.0;
/// Padding inside a box, px.
const PAD_PX: f64 = 8.0;
/// Height of the outcome bar under a node's text, px.
const BAR_PX: f64 = 6.0;
/// Margin around the drawing, px.
const MARGIN_PX: f64 = 12.0;
/// The empty space kept around each box, px (horizontal, vertical).
const HALO: Point = Point { x: 16.0, y: 10.0 };
/// The legend's line on edge labels.
const EDGE_KEY: &str =
    "edge label: requests; error, fault and throttle share; average and p99 response time (ms)";
/// Legend swatch size, px.
const SWATCH_PX: f64 = 12.0;

/// What a recorded box was created for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Node(usize),
    Label(usize),
}

impl Part {
    fn property(self) -> String {
        match self {
            Self::Node(i) => format!("node:{i}"),
            Self::Label(i) => format!("label:{i}"),
        }
    }

    fn parse(property: &str) -> Option<Self> {
        let (kind, index) = property.split_once(':')?;
        let index = index.parse().ok()?;
        match kind {
            "node" => Some(Self::Node(index)),
            "label" => Some(Self::Label(index)),
            _ => None,
        }
    }
}

/// A box's top-left corner and size.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Placed {
    x: f64,
    y: f64,
    width: f64,
    height: f64,
}

/// One drawn half of an edge (caller → label, or label → callee).
#[derive(Clone, Debug, PartialEq)]
struct EdgePath {
    edge: usize,
    points: Vec<(Point, Point)>,
    head_at_start: bool,
    head_at_end: bool,
}

/// Where layout-rs put things.
#[derive(Default)]
struct Recorder {
    boxes: BTreeMap<Part, Placed>,
    paths: Vec<EdgePath>,
}

impl RenderBackend for Recorder {
    fn draw_rect(
        &mut self,
        xy: Point,
        size: Point,
        _look: &StyleAttr,
        properties: Option<String>,
        _clip: Option<ClipHandle>,
    ) {
        if let Some(part) = properties.as_deref().and_then(Part::parse) {
            self.boxes.insert(
                part,
                Placed {
                    x: xy.x,
                    y: xy.y,
                    width: size.x,
                    height: size.y,
                },
            );
        }
    }

    fn draw_line(&mut self, _: Point, _: Point, _: &StyleAttr, _: Option<String>) {}

    fn draw_circle(&mut self, _: Point, _: Point, _: &StyleAttr, _: Option<String>) {}

    fn draw_text(&mut self, _: Point, _: &str, _: &StyleAttr) {}

    fn draw_arrow(
        &mut self,
        path: &[(Point, Point)],
        _dashed: bool,
        head: (bool, bool),
        _look: &StyleAttr,
        properties: Option<String>,
        _text: &str,
    ) {
        let edge = properties
            .as_deref()
            .and_then(|p| p.strip_prefix("edge:"))
            .and_then(|p| p.split(':').next())
            .and_then(|i| i.parse().ok());
        if let (Some(edge), true) = (edge, path.len() >= 2) {
            self.paths.push(EdgePath {
                edge,
                points: path.to_vec(),
                head_at_start: head.0,
                head_at_end: head.1,
            });
        }
    }

    fn create_clip(&mut self, _: Point, _: Point, _: usize) -> ClipHandle {
        0
    }
}

/// The size of a box holding `lines`, plus `extra` px of height.
fn box_size(lines: &[String], extra: f64) -> Point {
    let chars = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64;
    Point::new(
        chars * CHAR_PX + 2.0 * PAD_PX,
        lines.len() as f64 * LINE_PX + 2.0 * PAD_PX + extra,
    )
}

/// Lays `map` out: every node's and label's box, every edge's paths.
fn lay_out(map: &MapData) -> Result<Recorder, String> {
    let mut graph = VisualGraph::new(Orientation::LeftToRight);
    let element = |part: Part, size: Point| {
        let mut element = Element::create_with_properties(
            ShapeKind::Box(String::new()),
            StyleAttr::simple(),
            Orientation::LeftToRight,
            size,
            part.property(),
        );
        // layout-rs keeps a 60 px halo around each box; a map of text boxes reads better closer.
        element.pos = Position::new(Point::zero(), size, Point::zero(), HALO);
        element
    };
    let mut handles = BTreeMap::new();
    for (i, node) in map.nodes.iter().enumerate() {
        let extra = if node.shares.is_some() {
            BAR_PX + 4.0
        } else {
            0.0
        };
        let handle = graph.add_node(element(Part::Node(i), box_size(&node.label, extra)));
        handles.insert(node.id.as_str(), handle);
    }
    for (i, edge) in map.edges.iter().enumerate() {
        let (Some(&from), Some(&to)) = (
            handles.get(edge.from.as_str()),
            handles.get(edge.to.as_str()),
        ) else {
            continue;
        };
        let label = graph.add_node(element(Part::Label(i), box_size(&edge.label, 0.0)));
        let half = |start: LineEndKind, end: LineEndKind, which: &str| {
            Arrow::with_properties(
                start,
                end,
                LineStyleKind::Normal,
                "",
                &StyleAttr::simple(),
                format!("edge:{i}:{which}"),
                &None,
                &None,
            )
        };
        if from == to {
            // A node calling itself: its label hangs off it on one two-headed line (two halves
            // would be two identical edges node → label once layout-rs breaks the cycle).
            graph.add_edge(
                half(LineEndKind::Arrow, LineEndKind::Arrow, "self"),
                from,
                label,
            );
        } else {
            graph.add_edge(
                half(LineEndKind::None, LineEndKind::None, "in"),
                from,
                label,
            );
            graph.add_edge(
                half(LineEndKind::None, LineEndKind::Arrow, "out"),
                label,
                to,
            );
        }
    }
    let mut recorder = Recorder::default();
    if graph.num_nodes() > 0 {
        // layout-rs checks its own work with assertions: a graph it cannot place is reported,
        // never a panic that would end loadgen after the run.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            graph.do_it(false, false, false, &mut recorder)
        }))
        .map_err(|panic| {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            format!("layout-rs could not lay the map out: {why}")
        })?;
    }
    Ok(recorder)
}

/// The kinds' legend words.
pub fn kind_name(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Client => "client",
        NodeKind::Loadgen => "loadgen (no AWS origin)",
        NodeKind::LambdaService => "AWS::Lambda (Lambda's own trace)",
        NodeKind::LambdaFunction => "AWS::Lambda::Function",
        NodeKind::DynamodbTable => "AWS::DynamoDB::Table",
        NodeKind::AwsService => "other AWS service",
        NodeKind::Remote => "remote (inferred)",
        NodeKind::Other => "other",
    }
}

/// CSS class suffix of a kind.
fn kind_class(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Client => "client",
        NodeKind::Loadgen => "loadgen",
        NodeKind::LambdaService => "lambda-service",
        NodeKind::LambdaFunction => "lambda-function",
        NodeKind::DynamodbTable => "dynamodb",
        NodeKind::AwsService => "aws",
        NodeKind::Remote => "remote",
        NodeKind::Other => "other",
    }
}

/// The offset that moves the drawing's top-left corner to (`MARGIN_PX`, `MARGIN_PX`), and the
/// drawing's size.
fn extent(recorder: &Recorder) -> (Point, Point) {
    let mut min = Point::new(f64::INFINITY, f64::INFINITY);
    let mut max = Point::new(f64::NEG_INFINITY, f64::NEG_INFINITY);
    let mut grow = |p: Point| {
        min = Point::new(min.x.min(p.x), min.y.min(p.y));
        max = Point::new(max.x.max(p.x), max.y.max(p.y));
    };
    for b in recorder.boxes.values() {
        grow(Point::new(b.x, b.y));
        grow(Point::new(b.x + b.width, b.y + b.height));
    }
    for path in &recorder.paths {
        for (a, b) in &path.points {
            grow(*a);
            grow(*b);
        }
    }
    if !min.x.is_finite() {
        return (Point::new(MARGIN_PX, MARGIN_PX), Point::zero());
    }
    (
        Point::new(MARGIN_PX - min.x, MARGIN_PX - min.y),
        Point::new(max.x - min.x, max.y - min.y),
    )
}

fn text_lines(out: &mut String, x: f64, y: f64, lines: &[String], class: &str) {
    let _ = write!(out, r#"<text class="{class}">"#);
    for (i, line) in lines.iter().enumerate() {
        let _ = write!(
            out,
            r#"<tspan x="{x:.1}" y="{:.1}">{}</tspan>"#,
            y + PAD_PX + FONT_PX + i as f64 * LINE_PX - 2.0,
            escape(line)
        );
    }
    out.push_str("</text>");
}

fn draw_node(out: &mut String, node: &MapNode, b: Placed) {
    let _ = write!(
        out,
        r#"<g class="node kind-{} health-{}" data-node-id="{}"><title>{} ({})</title><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="6"/>"#,
        kind_class(node.kind),
        node.health.name(),
        escape(&node.id),
        escape(&node.name),
        escape(kind_name(node.kind)),
        b.x,
        b.y,
        b.width,
        b.height
    );
    text_lines(out, b.x + PAD_PX, b.y, &node.label, "node-text");
    if let Some(shares) = &node.shares {
        let width = b.width - 2.0 * PAD_PX;
        let y = b.y + b.height - PAD_PX - BAR_PX + 2.0;
        let mut x = b.x + PAD_PX;
        for (health, share) in [
            (Health::Ok, shares.ok),
            (Health::Error, shares.error),
            (Health::Throttle, shares.throttle),
            (Health::Fault, shares.fault),
        ] {
            if share > 0.0 {
                let w = width * share / 100.0;
                let _ = write!(
                    out,
                    r#"<rect class="share share-{}" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{BAR_PX:.1}"/>"#,
                    health.name()
                );
                x += w;
            }
        }
    }
    out.push_str("</g>");
}

fn path_data(points: &[(Point, Point)]) -> String {
    let mut d = format!(
        "M {:.1} {:.1} C {:.1} {:.1}, {:.1} {:.1}, {:.1} {:.1}",
        points[0].0.x,
        points[0].0.y,
        points[0].1.x,
        points[0].1.y,
        points[1].0.x,
        points[1].0.y,
        points[1].1.x,
        points[1].1.y
    );
    for (control, end) in &points[2..] {
        let _ = write!(
            d,
            " S {:.1} {:.1}, {:.1} {:.1}",
            control.x, control.y, end.x, end.y
        );
    }
    d
}

fn draw_edges(out: &mut String, map: &MapData, recorder: &Recorder) {
    for (i, edge) in map.edges.iter().enumerate() {
        let Some(&label) = recorder.boxes.get(&Part::Label(i)) else {
            continue;
        };
        let health = edge.health.name();
        let _ = write!(
            out,
            r#"<g class="edge health-{health}" data-from="{}" data-to="{}">"#,
            escape(&edge.from),
            escape(&edge.to)
        );
        for path in recorder.paths.iter().filter(|p| p.edge == i) {
            let _ = write!(out, r#"<path d="{}""#, path_data(&path.points));
            if path.head_at_end {
                let _ = write!(out, r#" marker-end="url(#arrow-{health})""#);
            }
            if path.head_at_start {
                let _ = write!(out, r#" marker-start="url(#arrow-{health}-start)""#);
            }
            out.push_str("/>");
        }
        let _ = write!(
            out,
            r#"<g class="edge-label"><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="3"/>"#,
            label.x, label.y, label.width, label.height
        );
        text_lines(out, label.x + PAD_PX, label.y, &edge.label, "edge-text");
        out.push_str("</g></g>");
    }
}

/// The legend: the kinds on this map, then the health colours. Returns its height.
fn draw_legend(out: &mut String, map: &MapData, top: f64, width: f64) -> f64 {
    let mut kinds: Vec<NodeKind> = map.nodes.iter().map(|n| n.kind).collect();
    kinds.sort();
    kinds.dedup();
    let rows: [Vec<(String, String)>; 3] = [
        kinds
            .iter()
            .map(|&k| {
                (
                    format!("swatch kind-{}", kind_class(k)),
                    kind_name(k).to_owned(),
                )
            })
            .collect(),
        [
            Health::Ok,
            Health::Error,
            Health::Throttle,
            Health::Fault,
            Health::Idle,
        ]
        .iter()
        .map(|h| {
            (
                format!("swatch health-{}", h.name()),
                match h {
                    Health::Ok => "all OK",
                    Health::Error => "errors (4xx)",
                    Health::Throttle => "throttles (429)",
                    Health::Fault => "faults (5xx)",
                    Health::Idle => "no requests counted",
                }
                .to_owned(),
            )
        })
        .collect(),
        vec![(String::new(), EDGE_KEY.to_owned())],
    ];
    let _ = write!(out, r#"<g class="legend">"#);
    let mut y = top;
    let mut height = 0.0;
    for row in rows.iter().filter(|r| !r.is_empty()) {
        let mut x = MARGIN_PX;
        for (class, text) in row {
            let item = SWATCH_PX + 6.0 + text.chars().count() as f64 * CHAR_PX + 18.0;
            if x > MARGIN_PX && x + item > width - MARGIN_PX {
                x = MARGIN_PX;
                y += LINE_PX + 4.0;
            }
            let mut text_x = x;
            if !class.is_empty() {
                let _ = write!(
                    out,
                    r#"<rect class="{class}" x="{x:.1}" y="{:.1}" width="{SWATCH_PX}" height="{SWATCH_PX}" rx="2"/>"#,
                    y + 1.0
                );
                text_x += SWATCH_PX + 6.0;
            }
            let _ = write!(
                out,
                r#"<text class="legend-text" x="{text_x:.1}" y="{:.1}">{}</text>"#,
                y + FONT_PX,
                escape(text)
            );
            x += item;
        }
        y += LINE_PX + 4.0;
        height = y - top;
    }
    out.push_str("</g>");
    height
}

/// The widest legend row, px (the drawing is at least this wide).
fn legend_width() -> f64 {
    2.0 * MARGIN_PX + EDGE_KEY.len() as f64 * CHAR_PX
}

fn defs() -> String {
    let mut out = String::from("<defs>");
    for health in [
        Health::Idle,
        Health::Ok,
        Health::Error,
        Health::Throttle,
        Health::Fault,
    ] {
        for (suffix, orient) in [("", "auto"), ("-start", "auto-start-reverse")] {
            let _ = write!(
                out,
                r#"<marker id="arrow-{}{suffix}" class="arrow health-{}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="{orient}"><path d="M 0 0 L 10 5 L 0 10 z"/></marker>"#,
                health.name(),
                health.name()
            );
        }
    }
    out.push_str("</defs>");
    out
}

/// The map as an `<svg id="service-map">`, or why it could not be laid out.
pub fn svg(map: &MapData) -> Result<String, String> {
    let recorder = lay_out(map)?;
    let (offset, size) = extent(&recorder);
    let width = (size.x + 2.0 * MARGIN_PX).max(legend_width());
    let mut body = String::new();
    let _ = write!(
        body,
        r#"<g transform="translate({:.1} {:.1})">"#,
        offset.x, offset.y
    );
    draw_edges(&mut body, map, &recorder);
    for (i, node) in map.nodes.iter().enumerate() {
        if let Some(&b) = recorder.boxes.get(&Part::Node(i)) {
            draw_node(&mut body, node, b);
        }
    }
    body.push_str("</g>");
    let legend_top = size.y + 2.0 * MARGIN_PX + 8.0;
    let legend_height = draw_legend(&mut body, map, legend_top, width);
    let height = legend_top + legend_height + MARGIN_PX;
    Ok(format!(
        r#"<svg id="service-map" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0} {height:.0}" width="{width:.0}" height="{height:.0}" role="img" aria-label="Service map: {} nodes, {} edges">{}{body}</svg>"#,
        map.nodes.len(),
        map.edges.len(),
        defs()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::html::data::{MapEdge, Shares};

    fn node(id: &str, name: &str, kind: NodeKind) -> MapNode {
        MapNode {
            id: id.into(),
            name: name.into(),
            node_type: "AWS::Lambda::Function".into(),
            kind,
            health: Health::Ok,
            shares: Some(Shares {
                ok: 100.0,
                error: 0.0,
                throttle: 0.0,
                fault: 0.0,
            }),
            label: vec![name.into(), "AWS::Lambda::Function".into(), "12 req".into()],
        }
    }

    fn edge(from: &str, to: &str) -> MapEdge {
        MapEdge {
            from: from.into(),
            to: to.into(),
            health: Health::Fault,
            label: vec!["12 req".into(), "err 0 % fault 8.33 % thr 0 %".into()],
        }
    }

    fn demo() -> MapData {
        MapData {
            nodes: vec![
                node("n0", "loadgen", NodeKind::Loadgen),
                node("n1", "order", NodeKind::LambdaFunction),
                node("n2", "inventory", NodeKind::LambdaFunction),
                node("n3", "payment", NodeKind::LambdaFunction),
            ],
            edges: vec![
                edge("n0", "n1"),
                edge("n1", "n2"),
                edge("n1", "n3"),
                edge("n0", "n3"),
            ],
            facade_traces: false,
        }
    }

    fn overlap(a: &Placed, b: &Placed) -> bool {
        a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height
    }

    #[test]
    fn the_layout_keeps_each_boxs_size_and_overlaps_none() {
        let map = demo();
        let recorder = lay_out(&map).unwrap();
        assert_eq!(recorder.boxes.len(), 4 + 4);
        for (i, n) in map.nodes.iter().enumerate() {
            let b = recorder.boxes[&Part::Node(i)];
            let want = box_size(&n.label, BAR_PX + 4.0);
            assert_eq!((b.width, b.height), (want.x, want.y), "{}", n.name);
        }
        let boxes: Vec<_> = recorder.boxes.values().collect();
        for (i, a) in boxes.iter().enumerate() {
            for b in &boxes[i + 1..] {
                assert!(!overlap(a, b), "{a:?} overlaps {b:?}");
            }
        }
        // Two halves per edge, the second with the arrowhead.
        for i in 0..4 {
            let halves: Vec<_> = recorder.paths.iter().filter(|p| p.edge == i).collect();
            assert_eq!(halves.len(), 2, "edge {i}");
            assert_eq!(halves.iter().filter(|p| p.head_at_end).count(), 1);
        }
    }

    #[test]
    fn it_reads_left_to_right_caller_before_callee() {
        let map = demo();
        let recorder = lay_out(&map).unwrap();
        let x = |i| recorder.boxes[&Part::Node(i)].x;
        assert!(x(0) < x(1), "loadgen left of order");
        assert!(x(1) < x(2) && x(1) < x(3), "order left of its callees");
        let label = recorder.boxes[&Part::Label(1)];
        assert!(
            x(1) < label.x && label.x < x(2),
            "order → inventory's label between them"
        );
    }

    #[test]
    fn the_svg_has_a_group_per_node_and_edge_with_its_lines_escaped() {
        let mut map = demo();
        map.nodes[1].label[0] = "order<&>".into();
        let svg = svg(&map).unwrap();
        assert!(svg.starts_with(r#"<svg id="service-map""#));
        assert_eq!(svg.matches(r#"<g class="node "#).count(), 4);
        assert_eq!(svg.matches(r#"<g class="edge "#).count(), 4);
        assert_eq!(svg.matches(r#"<g class="edge-label">"#).count(), 4);
        assert_eq!(svg.matches(r#"<g class="legend">"#).count(), 1);
        assert!(svg.contains(r#"<g class="edge health-fault" data-from="n1" data-to="n2">"#));
        assert!(svg.contains("order&lt;&amp;&gt;</tspan>"));
        assert!(!svg.contains("order<&>"));
        assert_eq!(svg.matches("marker-end=").count(), 4);
    }

    #[test]
    fn an_empty_map_draws_only_the_legend() {
        let map = MapData {
            nodes: Vec::new(),
            edges: Vec::new(),
            facade_traces: false,
        };
        let svg = svg(&map).unwrap();
        assert!(!svg.contains(r#"class="node "#));
        assert!(svg.contains(r#"<g class="legend">"#));
    }

    #[test]
    fn cycles_self_calls_and_repeated_pairs_are_laid_out_without_overlaps() {
        let mut map = demo();
        // inventory → order (a cycle with order → inventory), payment → payment, and a second
        // loadgen → order edge (X-Ray gives one per pair of ids; two ids can share names).
        map.edges.push(edge("n2", "n1"));
        map.edges.push(edge("n3", "n3"));
        map.edges.push(edge("n0", "n1"));
        let recorder = lay_out(&map).unwrap();
        assert_eq!(recorder.boxes.len(), 4 + 7);
        let boxes: Vec<_> = recorder.boxes.values().collect();
        for (i, a) in boxes.iter().enumerate() {
            for b in &boxes[i + 1..] {
                assert!(!overlap(a, b), "{a:?} overlaps {b:?}");
            }
        }
        let self_call: Vec<_> = recorder.paths.iter().filter(|p| p.edge == 5).collect();
        assert_eq!(self_call.len(), 1);
        assert!(self_call[0].head_at_start && self_call[0].head_at_end);
        let svg = svg(&map).unwrap();
        assert_eq!(svg.matches(r#"<g class="edge "#).count(), 7);
        assert!(svg.contains(r#"data-from="n3" data-to="n3""#));
    }

    #[test]
    fn an_edge_to_a_node_not_on_the_map_is_left_out() {
        let mut map = demo();
        map.edges.push(edge("n1", "n9"));
        let recorder = lay_out(&map).unwrap();
        assert!(!recorder.boxes.contains_key(&Part::Label(4)));
        assert_eq!(svg(&map).unwrap().matches(r#"<g class="edge "#).count(), 4);
    }
}
