//! Modal forms of the Hosts screen (add / edit a host, add a range, paste hosts.ini lines): their
//! fields, how keys change them, and how a filled form becomes hosts.

use super::input::{Edit, Input};
use crate::model::{Auth, Host, Secret};

pub const AUTH_CHOICES: &[&str] = &["local", "key", "password"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(Input),
    /// Shown as one dot per character, never in clear.
    Secret(Input),
    Choice {
        options: &'static [&'static str],
        index: usize,
    },
    /// Several lines; Enter adds a line, Ctrl-S submits.
    Lines(Input),
}

/// Which field it is: what the form is read by, so labels can be reworded freely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldId {
    Name,
    Address,
    Ip,
    Port,
    User,
    Auth,
    KeyFile,
    SshPassword,
    SudoPassword,
    Addresses,
    NamePrefix,
    Lines,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub id: FieldId,
    pub label: &'static str,
    pub value: Value,
}

/// How kswizard reaches a host: port, user, auth, key file, passwords.
fn access_fields(h: &Host) -> Vec<Field> {
    let (auth, key_file, password) = match &h.auth {
        Auth::Local => (0, "", ""),
        Auth::Key { file } => (1, file.as_deref().unwrap_or(""), ""),
        Auth::Password(p) => (2, "", p.expose()),
    };
    vec![
        Field::text(
            FieldId::Port,
            "SSH port",
            h.port.map(|p| p.to_string()).unwrap_or_default(),
        ),
        Field::text(
            FieldId::User,
            "User (empty = root)",
            h.user.as_deref().unwrap_or(""),
        ),
        Field {
            id: FieldId::Auth,
            label: "Auth",
            value: Value::Choice {
                options: AUTH_CHOICES,
                index: auth,
            },
        },
        Field::text(FieldId::KeyFile, "Key file (empty = default)", key_file),
        Field::secret(FieldId::SshPassword, "SSH password", password),
        Field::secret(
            FieldId::SudoPassword,
            "Sudo password",
            h.become_pass.as_ref().map_or("", Secret::expose),
        ),
    ]
}

impl Field {
    fn text(id: FieldId, label: &'static str, text: impl Into<String>) -> Self {
        Field {
            id,
            label,
            value: Value::Text(Input::new(text)),
        }
    }

    fn secret(id: FieldId, label: &'static str, text: &str) -> Self {
        Field {
            id,
            label,
            value: Value::Secret(Input::new(text)),
        }
    }

    fn input(&self) -> Option<&Input> {
        match &self.value {
            Value::Text(i) | Value::Secret(i) | Value::Lines(i) => Some(i),
            Value::Choice { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormKind {
    AddHost,
    /// Editing the host at this index of `cluster.hosts`.
    EditHost(usize),
    Range,
    Paste,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    pub kind: FormKind,
    pub fields: Vec<Field>,
    pub focus: usize,
    /// Why the last submit was refused.
    pub error: Option<String>,
}

impl Form {
    fn new(kind: FormKind, fields: Vec<Field>) -> Self {
        Form {
            kind,
            fields,
            focus: 0,
            error: None,
        }
    }

    /// The host editor, filled from `host`: the host being edited, or for a new one a template
    /// with the access the hosts already there have most (`bulk::common_access`).
    pub fn host(kind: FormKind, host: &Host) -> Self {
        let mut fields = vec![
            Field::text(FieldId::Name, "Name", host.name.as_str()),
            Field::text(
                FieldId::Address,
                "Address (ansible_host)",
                host.address.as_deref().unwrap_or(""),
            ),
            Field::text(
                FieldId::Ip,
                "Node IP (ip)",
                host.ip.as_deref().unwrap_or(""),
            ),
        ];
        fields.extend(access_fields(host));
        Form::new(kind, fields)
    }

    /// Hosts from an address range, each with the access fields' values (prefilled from
    /// `template`, as for one new host).
    pub fn range(template: &Host) -> Self {
        let mut fields = vec![
            Field::text(FieldId::Addresses, "Addresses", ""),
            Field::text(FieldId::NamePrefix, "Name prefix", "node"),
        ];
        fields.extend(access_fields(template));
        Form::new(FormKind::Range, fields)
    }

    pub fn paste() -> Self {
        Form::new(
            FormKind::Paste,
            vec![Field {
                id: FieldId::Lines,
                label: "hosts.ini lines",
                value: Value::Lines(Input::default()),
            }],
        )
    }

    pub fn title(&self) -> &'static str {
        match self.kind {
            FormKind::AddHost => "Add host",
            FormKind::EditHost(_) => "Edit host",
            FormKind::Range => "Add hosts from an address range (e.g. 192.168.0.11-16)",
            FormKind::Paste => "Paste hosts.ini host lines",
        }
    }

    pub fn focused(&self) -> &Field {
        &self.fields[self.focus]
    }

    pub fn move_focus(&mut self, forward: bool) {
        let n = self.fields.len();
        self.focus = if forward {
            (self.focus + 1) % n
        } else {
            (self.focus + n - 1) % n
        };
    }

    /// Space or ←/→ on a choice: the next or previous option.
    pub fn cycle(&mut self, forward: bool) {
        if let Value::Choice { options, index } = &mut self.fields[self.focus].value {
            let n = options.len();
            *index = if forward {
                (*index + 1) % n
            } else {
                (*index + n - 1) % n
            };
        }
    }

    pub fn edit(&mut self, edit: Edit) {
        match &mut self.fields[self.focus].value {
            Value::Text(i) | Value::Secret(i) | Value::Lines(i) => i.apply(edit),
            Value::Choice { .. } => {}
        }
        self.error = None;
    }

    /// The text of field `id`, trimmed; empty for a choice.
    pub fn text(&self, id: FieldId) -> &str {
        self.fields
            .iter()
            .find(|f| f.id == id)
            .and_then(Field::input)
            .map_or("", |i| i.text().trim())
    }

    fn choice(&self, id: FieldId) -> usize {
        self.fields
            .iter()
            .find_map(|f| match f.value {
                Value::Choice { index, .. } if f.id == id => Some(index),
                _ => None,
            })
            .unwrap_or(0)
    }

    /// The host the editor describes; `base` supplies what the form does not show (roles, unknown
    /// keys, the line's comment).
    pub fn to_host(&self, base: Option<&Host>) -> Result<Host, String> {
        let name = self.text(FieldId::Name);
        if name.is_empty() {
            return Err("give the host a name".to_string());
        }
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let address = some(self.text(FieldId::Address));
        let ip = some(self.text(FieldId::Ip)).or_else(|| address.clone());
        let mut host = base.cloned().unwrap_or_else(|| Host::new("", ""));
        host.name = name.to_string();
        host.address = address;
        host.ip = ip;
        self.apply_access(&mut host)?;
        Ok(host)
    }

    /// Port, user, auth and passwords from the access fields onto `host`.
    pub fn apply_access(&self, host: &mut Host) -> Result<(), String> {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        host.port = match self.text(FieldId::Port) {
            "" => None,
            p => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| format!("SSH port '{p}' is not a port: 1..65535"))?,
            ),
        };
        host.auth = match AUTH_CHOICES[self.choice(FieldId::Auth)] {
            "local" => Auth::Local,
            "key" => Auth::Key {
                file: some(self.text(FieldId::KeyFile)),
            },
            _ => match self.text(FieldId::SshPassword) {
                "" => return Err("enter the SSH password, or choose key".to_string()),
                p => Auth::Password(Secret::new(p)),
            },
        };
        host.user = some(self.text(FieldId::User));
        host.become_pass = some(self.text(FieldId::SudoPassword)).map(Secret::new);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn type_into(form: &mut Form, text: &str) {
        form.edit(Edit::Clear);
        for c in text.chars() {
            form.edit(Edit::Insert(c));
        }
    }

    #[test]
    fn editing_keeps_what_the_form_does_not_show() {
        let mut base = Host::new("node1", "10.0.0.1");
        base.roles.worker = true;
        base.extra.push(("custom".into(), "1".into()));
        let mut form = Form::host(FormKind::EditHost(0), &base);
        form.focus = 4;
        type_into(&mut form, "ubuntu");
        form.focus = 8;
        type_into(&mut form, "pw");
        let h = form.to_host(Some(&base)).unwrap();
        assert_eq!(h.user.as_deref(), Some("ubuntu"));
        assert_eq!(h.become_pass, Some(Secret::new("pw")));
        assert!(h.roles.worker);
        assert_eq!(h.extra, base.extra);
    }

    #[test]
    fn fields_are_read_by_id_not_by_their_label() {
        // Rewording a label on screen must not make the form lose what was typed into it.
        let mut form = Form::host(FormKind::AddHost, &Host::new("", ""));
        type_into(&mut form, "node1");
        form.fields[0].label = "Host name";
        form.focus = 1;
        type_into(&mut form, "10.0.0.1");
        form.fields[1].label = "Address";
        let h = form.to_host(None).unwrap();
        assert_eq!(
            (h.name.as_str(), h.ip.as_deref()),
            ("node1", Some("10.0.0.1"))
        );
    }

    #[test]
    fn refuses_a_bad_port_and_a_missing_password() {
        let mut form = Form::host(FormKind::AddHost, &Host::new("", ""));
        type_into(&mut form, "node1");
        form.focus = 3;
        type_into(&mut form, "99999");
        assert!(form.to_host(None).unwrap_err().contains("99999"));
        type_into(&mut form, "");
        form.focus = 5;
        form.cycle(true);
        assert!(form.to_host(None).unwrap_err().contains("password"));
    }
}
