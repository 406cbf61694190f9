//! Load balancer: mode, address (VIP), port and domain of the apiserver LB, validated as typed; for
//! an external LB, the checklist of what to set up on it.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::text::{Line, Span};

use crate::model::{APISERVER_PORT, CONSOLE_PORT, LbMode};
use crate::tui::state::{LbField, Screen, State};
use crate::tui::theme::{SYM_ERROR, SYM_OK, SYM_SELECTED};
use crate::tui::widgets::chrome::Hint;
use crate::tui::widgets::{boxed_height, findings, panel};

pub const PURPOSE: &str =
    "The address in front of the apiservers: VIP or LB address, port and domain.";

pub fn hints(state: &State) -> Vec<Hint> {
    if state.lb_field == LbField::Mode {
        vec![("↑↓ Tab", "field"), ("space ←→", "mode"), ("Enter", "next")]
    } else {
        vec![("↑↓ Tab", "field"), ("e", "edit"), ("Enter", "next")]
    }
}

const LABEL_WIDTH: usize = 10;

pub fn render(frame: &mut Frame, area: Rect, state: &State) {
    let theme = &state.theme;
    let lb = &state.cluster.lb;
    let notes: Vec<_> = state.findings_for(Screen::LoadBalancer).collect();
    let note_lines = if notes.is_empty() {
        vec![Line::styled(
            format!("{SYM_OK} no findings for the load balancer"),
            theme.ok,
        )]
    } else {
        findings::lines(notes, theme)
    };
    let [fields_area, notes_area, guide_area] = Layout::vertical([
        Constraint::Length(LbField::ALL.len() as u16 + 2),
        Constraint::Length(boxed_height(&note_lines, area.width)),
        Constraint::Min(0),
    ])
    .areas(area);

    let mut lines = Vec::new();
    for field in LbField::ALL {
        let focused = field == state.lb_field;
        let label = match field {
            LbField::Mode => "Mode",
            LbField::Address => "Address",
            LbField::Port => "Port",
            LbField::Domain => "Domain",
        };
        let editing = state.lb_edit.as_ref().filter(|_| focused);
        let value = match (field, editing) {
            (LbField::Mode, _) => {
                let mut s = String::new();
                for m in [LbMode::External, LbMode::BuiltIn, LbMode::None] {
                    let mark = if m == lb.mode { "(•)" } else { "( )" };
                    s.push_str(&format!("{mark} {}  ", m.label()));
                }
                s
            }
            (_, Some(edit)) => edit.input.text().to_string(),
            (LbField::Address, None) => lb.address.clone().unwrap_or_else(|| "(none)".into()),
            (LbField::Port, None) => lb.port.to_string(),
            (LbField::Domain, None) => lb.domain.clone(),
        };
        let marker = if focused { SYM_SELECTED } else { " " };
        let label_style = if focused { theme.selected } else { theme.key };
        let mut spans = vec![
            Span::raw(format!(" {marker} ")),
            Span::styled(format!("{label:<LABEL_WIDTH$}"), label_style),
            Span::raw(" "),
            Span::raw(value),
        ];
        if let Some(edit) = editing {
            frame.set_cursor_position(Position::new(
                fields_area.x + 1 + 3 + LABEL_WIDTH as u16 + 1 + edit.input.cursor() as u16,
                fields_area.y + 1 + lines.len() as u16,
            ));
            spans.push(Span::styled(
                "  (editing: Enter keeps, Esc undoes)",
                theme.dim,
            ));
            if let Some(e) = &edit.error {
                spans.push(Span::styled(format!("  {SYM_ERROR} {e}"), theme.error));
            }
        }
        lines.push(Line::from(spans));
    }
    frame.render_widget(panel(lines, "Apiserver load balancer"), fields_area);
    frame.render_widget(panel(note_lines, "Findings"), notes_area);
    frame.render_widget(panel(guide(state), guide_title(lb.mode)), guide_area);
}

fn guide_title(mode: LbMode) -> &'static str {
    match mode {
        LbMode::External => "Set up on your load balancer",
        LbMode::BuiltIn => "What the install sets up",
        LbMode::None => "Without a load balancer",
    }
}

/// What the operator has to do (external) or what kswizard will do (built-in), for this cluster.
fn guide(state: &State) -> Vec<Line<'static>> {
    let lb = &state.cluster.lb;
    let masters: Vec<String> = state
        .cluster
        .masters()
        .map(|h| format!("{}:{APISERVER_PORT}", h.node_ip()))
        .collect();
    let backends = if masters.is_empty() {
        "(no masters yet)".to_string()
    } else {
        masters.join(", ")
    };
    let address = lb.address.clone().unwrap_or_else(|| "(address)".into());
    let nodes = state.cluster.hosts.len();
    let console = state.cluster.settings.console_lb;
    let mut items: Vec<String> = match lb.mode {
        LbMode::External => vec![
            format!(
                "[ ] a TCP listener on {address}:{} (TCP, not HTTP: the apiserver speaks TLS itself)",
                lb.port
            ),
            "[ ] balancing: round robin".to_string(),
            format!("[ ] backends: {backends}"),
            format!(
                "[ ] firewall: port {} open from every node to the LB, {APISERVER_PORT} from the LB to the masters",
                lb.port
            ),
        ],
        LbMode::BuiltIn => vec![
            format!(
                "haproxy on every master, listening on port {} (it must differ from {APISERVER_PORT}, the apiserver's own)",
                lb.port
            ),
            format!(
                "keepalived moving the VIP {address} between the masters; pick a free address in their subnet"
            ),
            format!("backends: {backends}"),
        ],
        LbMode::None => vec![
            "Only a single master works without a load balancer: nodes use its address directly."
                .to_string(),
        ],
    };
    // The KubeSphere console behind the LB too (console_lb in conf/kswizard.yaml): the guides'
    // second listener.
    match lb.mode {
        LbMode::External if console => items.extend([
            format!("[ ] console: an HTTP listener on {address}:{CONSOLE_PORT}, backends every node's :{CONSOLE_PORT} ({nodes})"),
            format!("[ ] firewall: {CONSOLE_PORT} open to the LB, and from the LB to every node"),
        ]),
        LbMode::BuiltIn if console => items.push(format!(
            "haproxy also on {address}:{CONSOLE_PORT} (HTTP) in front of every node's console ({nodes} nodes)"
        )),
        LbMode::External | LbMode::BuiltIn => items.push(format!(
            "Console too (HTTP {CONSOLE_PORT}): console_lb: true in conf/kswizard.yaml."
        )),
        LbMode::None => {}
    }
    if lb.mode == LbMode::External {
        items.push(
            "Until the apiservers are up the LB shows the backends as \"unavailable\": that is expected.".to_string(),
        );
    }
    items
        .into_iter()
        .map(|i| Line::raw(format!(" {i}")))
        .collect()
}
