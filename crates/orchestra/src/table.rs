//! Plain text tables, aligned on the width text takes on a terminal.

/// A column's alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text starts at the left.
    Left,
    /// Numbers end at the right.
    Right,
}

/// A table with a header row.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<(String, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns.
    #[must_use]
    pub fn new(columns: &[(&str, Align)]) -> Self {
        Self {
            header: columns
                .iter()
                .map(|(name, align)| ((*name).to_owned(), *align))
                .collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are empty.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, one line per row, ending with a newline.
    #[must_use]
    pub fn render(&self) -> String {
        // Columns on screen, not characters: `日本` and most emoji take two
        // each, a combining accent none.
        let width = console::measure_text_width;
        let mut widths: Vec<usize> = self.header.iter().map(|(name, _)| width(name)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(widths.len()) {
                widths[i] = widths[i].max(width(cell));
            }
        }
        let line = |cells: Vec<&str>| -> String {
            let mut out = String::new();
            for (i, (&w, (_, align))) in widths.iter().zip(&self.header).enumerate() {
                let cell = cells.get(i).copied().unwrap_or("");
                let pad = " ".repeat(w.saturating_sub(width(cell)));
                if i > 0 {
                    out.push_str("  ");
                }
                match align {
                    Align::Left => {
                        out.push_str(cell);
                        out.push_str(&pad);
                    }
                    Align::Right => {
                        out.push_str(&pad);
                        out.push_str(cell);
                    }
                }
            }
            out.trim_end().to_owned() + "\n"
        };
        let mut out = line(self.header.iter().map(|(name, _)| name.as_str()).collect());
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        out.push_str(&line(rule.iter().map(String::as_str).collect()));
        for row in &self.rows {
            out.push_str(&line(row.iter().map(String::as_str).collect()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns() {
        let mut table = Table::new(&[("agent", Align::Left), ("tokens", Align::Right)]);
        table.row(vec!["writer".into(), "1200".into()]);
        table.row(vec!["é".into(), "7".into()]);
        assert_eq!(
            table.render(),
            "agent   tokens\n------  ------\nwriter    1200\né            7\n"
        );
    }

    #[test]
    fn wide_characters_are_padded_by_the_columns_they_take() {
        let mut table = Table::new(&[("agent", Align::Left), ("tokens", Align::Right)]);
        table.row(vec!["日本".into(), "12".into()]);
        table.row(vec!["🚀 go".into(), "3".into()]);
        table.row(vec!["writer".into(), "1200".into()]);
        assert_eq!(
            table.render(),
            "agent   tokens\n------  ------\n日本        12\n🚀 go        3\nwriter    1200\n"
        );
    }
}
