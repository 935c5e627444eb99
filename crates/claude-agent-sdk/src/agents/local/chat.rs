//! [`ChatFormat`]: how a conversation becomes the model's prompt, read from the
//! GGUF file's `tokenizer.chat_template`.
//!
//! Chat templates are Jinja programs. Rather than embed a Jinja engine for
//! the two formats the supported families use, the template is *recognised*:
//! ChatML (`<|im_start|>role\n…<|im_end|>`: SmolLM2, Qwen2.5) and Llama 3
//! (`<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>`). A default
//! system message the template writes when the conversation has none (SmolLM2's
//! "You are a helpful AI assistant named SmolLM…", Qwen's "You are Qwen…") is
//! read out of the template and used the same way. Any other template is a
//! [`ChatTemplate`](super::LocalModelError::ChatTemplate) error when the model
//! loads, never a silently wrong prompt. (Llama 3.1's template also writes a
//! knowledge-cutoff date into the system message; this rendering leaves it out.)
//!
//! The rendered prompt is a list of [`Segment`]s: the template's own markers
//! are tokenized as control tokens, the messages' text never is, so a message
//! that contains `<|im_end|>` cannot end its turn early.

/// One piece of a rendered prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// Template text: control tokens in it are matched as such.
    Markup(String),
    /// Message text: tokenized as plain text.
    Text(String),
}

/// A recognised chat format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChatFormat {
    /// `<|im_start|>role\ncontent<|im_end|>\n`.
    ChatMl {
        /// The system message the template adds when there is none.
        default_system: Option<String>,
    },
    /// `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>`.
    Llama3 {
        /// The system message the template adds when there is none.
        default_system: Option<String>,
    },
}

impl ChatFormat {
    /// Recognises `template`, or says what it is not.
    pub(crate) fn recognise(template: &str) -> Result<Self, String> {
        if template.contains("<|im_start|>") {
            Ok(Self::ChatMl {
                default_system: default_system(template, "<|im_start|>system", "<|im_end|>"),
            })
        } else if template.contains("<|start_header_id|>") {
            Ok(Self::Llama3 {
                default_system: default_system(
                    template,
                    "<|start_header_id|>system<|end_header_id|>",
                    "<|eot_id|>",
                ),
            })
        } else {
            let start: String = template.chars().take(60).collect();
            Err(format!("the template starts `{start}`"))
        }
    }

    /// The token texts that end the assistant's turn.
    pub(crate) fn end_of_turn(&self) -> &'static [&'static str] {
        match self {
            Self::ChatMl { .. } => &["<|im_end|>", "<|endoftext|>"],
            Self::Llama3 { .. } => &["<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"],
        }
    }

    /// The prompt for a system message (or the template's default) and one
    /// user message, ending where the assistant's reply begins.
    pub(crate) fn render(&self, system: Option<&str>, user: &str) -> Vec<Segment> {
        let mut out = Vec::with_capacity(6);
        match self {
            Self::ChatMl { default_system } => {
                if let Some(system) = system.or(default_system.as_deref()) {
                    out.push(Segment::Markup("<|im_start|>system\n".into()));
                    out.push(Segment::Text(system.into()));
                    out.push(Segment::Markup("<|im_end|>\n".into()));
                }
                out.push(Segment::Markup("<|im_start|>user\n".into()));
                out.push(Segment::Text(user.into()));
                out.push(Segment::Markup(
                    "<|im_end|>\n<|im_start|>assistant\n".into(),
                ));
            }
            Self::Llama3 { default_system } => {
                out.push(Segment::Markup("<|begin_of_text|>".into()));
                if let Some(system) = system.or(default_system.as_deref()) {
                    out.push(Segment::Markup(
                        "<|start_header_id|>system<|end_header_id|>\n\n".into(),
                    ));
                    out.push(Segment::Text(system.into()));
                    out.push(Segment::Markup("<|eot_id|>".into()));
                }
                out.push(Segment::Markup(
                    "<|start_header_id|>user<|end_header_id|>\n\n".into(),
                ));
                out.push(Segment::Text(user.into()));
                out.push(Segment::Markup(
                    "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n".into(),
                ));
            }
        }
        out
    }
}

/// The literal system message a template writes after `open` (followed by a
/// newline, real or escaped) and before `close`, if it writes one.
fn default_system(template: &str, open: &str, close: &str) -> Option<String> {
    for (at, _) in template.match_indices(open) {
        let rest = &template[at + open.len()..];
        let rest = rest
            .strip_prefix("\\n\\n")
            .or_else(|| rest.strip_prefix("\n\n"))
            .or_else(|| rest.strip_prefix("\\n"))
            .or_else(|| rest.strip_prefix('\n'))?;
        let Some(end) = rest.find(close) else {
            continue;
        };
        let text = &rest[..end];
        // Only literal text: a message's content or other Jinja is not a default.
        if !text.is_empty() && !text.contains(['{', '}', '\'', '"', '+']) {
            return Some(text.replace("\\n", "\n"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-135M-Instruct's `tokenizer.chat_template`, as its GGUF file has it.
    pub(crate) const SMOLLM2_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    fn flat(segments: &[Segment]) -> String {
        segments
            .iter()
            .map(|s| match s {
                Segment::Markup(t) | Segment::Text(t) => t.as_str(),
            })
            .collect()
    }

    #[test]
    fn renders_smollm2_as_its_template_does() {
        let f = ChatFormat::recognise(SMOLLM2_TEMPLATE).unwrap();
        assert_eq!(
            flat(&f.render(None, "hi")),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(
            flat(&f.render(Some("Be brief."), "hi")),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert!(f.end_of_turn().contains(&"<|im_end|>"));
    }

    #[test]
    fn recognises_llama3_and_escaped_defaults() {
        let qwen =
            "{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud.<|im_end|>\\n' }}";
        assert_eq!(
            ChatFormat::recognise(qwen).unwrap(),
            ChatFormat::ChatMl {
                default_system: Some("You are Qwen, created by Alibaba Cloud.".into())
            }
        );
        let llama = "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}";
        let f = ChatFormat::recognise(llama).unwrap();
        assert_eq!(
            f,
            ChatFormat::Llama3 {
                default_system: None
            }
        );
        assert_eq!(
            flat(&f.render(Some("S"), "U")),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        );
    }

    #[test]
    fn rejects_unknown_templates() {
        let err = ChatFormat::recognise("[INST] {{ message }} [/INST]").unwrap_err();
        assert!(err.contains("[INST]"));
    }
}
