//! Reading a report document as it arrives: `AmazonEnvelope / Message / Order`, one `<Order>`
//! at a time, so memory holds one order whatever the document's size.
//!
//! Amazon publishes no schema for these reports (REPORTS.md): elements are read by name, any
//! element this build does not know is kept (in the order's raw form) and otherwise ignored, and
//! nothing depends on element order. What is not XML is an error that names the report, the byte
//! offset in the (decompressed) document and the message it was in: a truncated document, a
//! broken tag, an unknown entity, a read that failed. The caller has then committed every order
//! before that message; nothing read after it is used.

use std::collections::BTreeMap;

use quick_xml::Reader;
use quick_xml::events::Event;
use serde_json::{Map, Value};
use tokio::io::AsyncBufRead;

/// Elements that hold many of their kind: always a list in the raw JSON, even with one entry,
/// so that a consumer of `raw` finds the same shape in every order.
const LISTS: [&str; 3] = ["OrderItem", "Component", "Promotion"];

/// An order larger than this (elements) is not an order: a corrupt or hostile document.
const MAX_NODES_PER_ORDER: usize = 200_000;
/// Longest text of one element.
const MAX_TEXT: usize = 1 << 20;

/// An element of an `<Order>`: its name, attributes, text and children, in document order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    /// The first child element named `name`.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child element named `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The trimmed text of the first child named `name`, unless absent or blank.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The element as JSON, for `raw`: a leaf is its text; an element with attributes or
    /// children is an object (attributes as `@name`, text as `#text`); repeated children, and
    /// those in [`LISTS`], are lists.
    pub fn to_json(&self) -> Value {
        if self.children.is_empty() && self.attrs.is_empty() {
            return Value::String(self.text.trim().to_owned());
        }
        let mut out = Map::new();
        for (k, v) in &self.attrs {
            out.insert(format!("@{k}"), Value::String(v.clone()));
        }
        let text = self.text.trim();
        if !text.is_empty() {
            out.insert("#text".to_owned(), Value::String(text.to_owned()));
        }
        let mut groups: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for c in &self.children {
            groups.entry(c.name.as_str()).or_default().push(c.to_json());
        }
        for (name, mut values) in groups {
            let value = if values.len() == 1 && !LISTS.contains(&name) {
                values.pop().unwrap_or(Value::Null)
            } else {
                Value::Array(values)
            };
            out.insert(name.to_owned(), value);
        }
        Value::Object(out)
    }
}

/// A document that could not be read as a report, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("report {report}: {what} at byte {position} of the document (message {message}{after})")]
pub struct ParseError {
    pub report: String,
    pub what: String,
    /// Byte offset in the decompressed document.
    pub position: u64,
    /// The message (from 1) being read; 0 before the first.
    pub message: u64,
    /// ", after order <id>" when an order was read before.
    pub after: String,
}

/// One `<Order>` and the message it came in.
#[derive(Debug, Clone, PartialEq)]
pub struct RawOrder {
    /// The `<Message>` number, from 1.
    pub message: u64,
    pub node: Node,
}

/// Where the reader is in the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    BeforeRoot,
    /// Inside the root; `skip` counts open elements being skipped (Header, MessageType, ...).
    InEnvelope,
    InMessage,
    AfterRoot,
}

/// Reads a report document order by order.
pub struct DocumentOrders<R> {
    reader: Reader<R>,
    buf: Vec<u8>,
    report: String,
    place: Place,
    /// Depth of elements being skipped (not an Order, not part of the envelope's structure).
    skipping: usize,
    /// Open elements of the order being read: the order itself at index 0.
    stack: Vec<Node>,
    nodes: usize,
    messages: u64,
    /// Whether the open `<Message>` gave an order yet.
    order_in_message: bool,
    /// `<Message>`s that held no `<Order>` (other message types).
    pub messages_without_order: u64,
    last_order: Option<String>,
}

impl<R: AsyncBufRead + Unpin> DocumentOrders<R> {
    pub fn new(source: R, report_id: &str) -> Self {
        let mut reader = Reader::from_reader(source);
        // Text is not trimmed by the reader: `Tom &amp; Jerry` arrives as three events, and the
        // spaces around the entity are content. An end tag must close what it says.
        let config = reader.config_mut();
        config.trim_text(false);
        config.check_end_names = true;
        DocumentOrders {
            reader,
            buf: Vec::with_capacity(8 * 1024),
            report: report_id.to_owned(),
            place: Place::BeforeRoot,
            skipping: 0,
            stack: Vec::new(),
            nodes: 0,
            messages: 0,
            order_in_message: false,
            messages_without_order: 0,
            last_order: None,
        }
    }

    /// Messages started so far.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Bytes of the document read so far.
    pub fn position(&self) -> u64 {
        self.reader.buffer_position()
    }

    fn error(&self, what: impl Into<String>, position: u64) -> ParseError {
        ParseError {
            report: self.report.clone(),
            what: what.into(),
            position,
            message: self.messages,
            after: self
                .last_order
                .as_deref()
                .map(|id| format!(", after order {id}"))
                .unwrap_or_default(),
        }
    }

    /// Text inside the order being read.
    fn push_text(&mut self, text: &str) -> Result<(), ParseError> {
        let Some(node) = self.stack.last_mut() else {
            return Ok(());
        };
        // Indentation between child elements is not content.
        if !node.children.is_empty() && text.trim().is_empty() {
            return Ok(());
        }
        if node.text.len() + text.len() > MAX_TEXT {
            let name = node.name.clone();
            let at = self.reader.buffer_position();
            return Err(self.error(
                format!("element <{name}> holds more than {MAX_TEXT} bytes of text"),
                at,
            ));
        }
        // Postgres refuses U+0000; XML 1.0 cannot carry it either, but a character reference
        // can still spell it.
        if text.contains('\0') {
            node.text.push_str(&text.replace('\0', "\u{FFFD}"));
        } else {
            node.text.push_str(text);
        }
        Ok(())
    }

    fn open(&mut self, name: String, attrs: Vec<(String, String)>) -> Result<(), ParseError> {
        match self.place {
            Place::BeforeRoot => {
                if name != "AmazonEnvelope" {
                    let at = self.reader.buffer_position();
                    return Err(self.error(
                        format!("the document is not an order report (root element <{name}>)"),
                        at,
                    ));
                }
                self.place = Place::InEnvelope;
            }
            Place::AfterRoot => {
                let at = self.reader.buffer_position();
                return Err(self.error("an element follows </AmazonEnvelope>", at));
            }
            _ if self.skipping > 0 => self.skipping += 1,
            _ if !self.stack.is_empty() => {
                self.nodes += 1;
                if self.nodes > MAX_NODES_PER_ORDER {
                    let at = self.reader.buffer_position();
                    return Err(self.error(
                        format!("an order holds more than {MAX_NODES_PER_ORDER} elements"),
                        at,
                    ));
                }
                self.stack.push(Node {
                    name,
                    attrs,
                    ..Node::default()
                });
            }
            Place::InEnvelope if name == "Message" => {
                self.messages += 1;
                self.order_in_message = false;
                self.place = Place::InMessage;
            }
            Place::InMessage if name == "Order" => {
                self.nodes = 1;
                self.stack.push(Node {
                    name,
                    attrs,
                    ..Node::default()
                });
            }
            // Header, MessageType, MessageID, or anything Amazon adds: not orders.
            _ => self.skipping = 1,
        }
        Ok(())
    }

    /// Closes the innermost element; returns an order when that was one.
    fn close(&mut self) -> Option<RawOrder> {
        if self.skipping > 0 {
            self.skipping -= 1;
            return None;
        }
        if let Some(node) = self.stack.pop() {
            match self.stack.last_mut() {
                Some(parent) => parent.children.push(node),
                None => {
                    self.last_order = node.text_of("AmazonOrderID").map(str::to_owned);
                    return Some(RawOrder {
                        message: self.messages,
                        node,
                    });
                }
            }
            return None;
        }
        match self.place {
            Place::InMessage => {
                self.place = Place::InEnvelope;
                if !self.order_in_message {
                    self.messages_without_order += 1;
                }
            }
            Place::InEnvelope => self.place = Place::AfterRoot,
            _ => {}
        }
        None
    }

    /// The next order, or `None` once `</AmazonEnvelope>` was read and the document ended.
    pub async fn next_order(&mut self) -> Result<Option<RawOrder>, ParseError> {
        loop {
            self.buf.clear();
            // What the event says, owned, so that the reader's buffer is free again.
            let step = match self.reader.read_event_into_async(&mut self.buf).await {
                Err(quick_xml::Error::Io(io)) => {
                    Step::Fail(format!("reading the document failed: {io}"))
                }
                Err(e) => Step::Fail(format!("the document is not well-formed XML: {e}")),
                Ok(Event::Start(e)) => {
                    element(&e).map_or_else(Step::Fail, |(n, a)| Step::Open(n, a, false))
                }
                Ok(Event::Empty(e)) => {
                    element(&e).map_or_else(Step::Fail, |(n, a)| Step::Open(n, a, true))
                }
                Ok(Event::End(_)) => Step::Close,
                Ok(Event::Text(t)) => Step::Text(t.xml10_content().into_owned()),
                Ok(Event::CData(t)) => Step::Text(t.xml10_content().into_owned()),
                Ok(Event::GeneralRef(r)) => match r.resolve_char_ref() {
                    Ok(Some(c)) => Step::Text(c.to_string()),
                    Ok(None) => match quick_xml::escape::resolve_predefined_entity(&r) {
                        Some(s) => Step::Text(s.to_owned()),
                        None => Step::Fail(format!("unknown entity &{};", &*r)),
                    },
                    Err(e) => Step::Fail(format!("bad character reference: {e}")),
                },
                Ok(Event::Eof) => Step::Eof,
                Ok(Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_)) => {
                    Step::Nothing
                }
            };
            match step {
                Step::Fail(what) => {
                    let at = self
                        .reader
                        .error_position()
                        .max(self.reader.buffer_position());
                    return Err(self.error(what, at));
                }
                Step::Open(name, attrs, empty) => {
                    self.open(name, attrs)?;
                    if empty && let Some(order) = self.close() {
                        self.order_in_message = true;
                        return Ok(Some(order));
                    }
                }
                Step::Close => {
                    if let Some(order) = self.close() {
                        self.order_in_message = true;
                        return Ok(Some(order));
                    }
                }
                Step::Text(text) => self.push_text(&text)?,
                Step::Nothing => {}
                Step::Eof => {
                    let at = self.reader.buffer_position();
                    return match self.place {
                        Place::AfterRoot => Ok(None),
                        Place::BeforeRoot => Err(self.error("the document is empty", at)),
                        _ => Err(self
                            .error("the document ends before </AmazonEnvelope> (truncated)", at)),
                    };
                }
            }
        }
    }
}

/// One event of the reader, owned.
enum Step {
    Open(String, Vec<(String, String)>, bool),
    Close,
    Text(String),
    Fail(String),
    Eof,
    Nothing,
}

/// An element's name and attributes, as text.
fn element(
    e: &quick_xml::events::BytesStart<'_>,
) -> Result<(String, Vec<(String, String)>), String> {
    let name = e.local_name().as_ref().to_owned();
    let mut attrs = Vec::new();
    for attr in e.attributes() {
        let attr = attr.map_err(|err| format!("bad attribute in <{name}>: {err}"))?;
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|err| format!("bad attribute value in <{name}>: {err}"))?;
        attrs.push((
            attr.key.local_name().as_ref().to_owned(),
            value.into_owned(),
        ));
    }
    Ok((name, attrs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = include_str!("../../../tests/fixtures/reports/all_orders.xml");

    async fn read_all(doc: &[u8], chunk: usize) -> (Vec<RawOrder>, Option<ParseError>) {
        let reader = tokio::io::BufReader::with_capacity(chunk, doc);
        let mut orders = DocumentOrders::new(reader, "50001");
        let mut out = Vec::new();
        loop {
            match orders.next_order().await {
                Ok(Some(o)) => out.push(o),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[tokio::test]
    async fn every_order_is_read_with_escapes_resolved_and_unknown_elements_kept() {
        let (orders, error) = read_all(DOC.as_bytes(), 64 * 1024).await;
        assert_eq!(error, None);
        let ids: Vec<_> = orders
            .iter()
            .map(|o| (o.message, o.node.text_of("AmazonOrderID").unwrap()))
            .collect();
        assert_eq!(
            ids,
            [
                (1, "402-1111111-1111111"),
                (2, "402-2222222-2222222"),
                (3, "402-3333333-3333333"),
                (4, "402-4444444-4444444"),
                (5, "402-5555555-5555555"),
                (6, "402-6666666-6666666"),
            ]
        );
        let first = &orders[0].node;
        let item = first.child("OrderItem").unwrap();
        assert_eq!(
            item.text_of("ProductName"),
            Some("Clavier & souris <sans fil> \u{2014} \"AZERTY\"")
        );
        let raw = first.to_json();
        assert_eq!(raw["SomethingAmazonAddedLater"]["@flag"], "yes");
        assert_eq!(
            raw["SomethingAmazonAddedLater"]["#text"],
            "kept in raw, ignored"
        );
        assert_eq!(
            raw["OrderItem"][0]["ItemPrice"]["Component"][0]["Amount"]["@currency"],
            "EUR"
        );
        assert_eq!(raw["FulfillmentData"]["Address"]["City"], "Lyon");
    }

    #[tokio::test]
    async fn tiny_reads_give_the_same_orders() {
        let (whole, _) = read_all(DOC.as_bytes(), 64 * 1024).await;
        for chunk in [1, 7, 61] {
            let (pieces, error) = read_all(DOC.as_bytes(), chunk).await;
            assert_eq!(error, None, "chunk {chunk}");
            assert_eq!(pieces, whole, "chunk {chunk}");
        }
    }

    #[tokio::test]
    async fn a_truncated_document_fails_naming_the_report_and_the_place_after_the_orders_before_it()
    {
        // Cut inside the third message.
        let cut = DOC.find("<OrderStatus>Shipping").unwrap();
        let (orders, error) = read_all(&DOC.as_bytes()[..cut], 4096).await;
        assert_eq!(orders.len(), 2, "the orders before the cut are read");
        let e = error.unwrap();
        assert_eq!(e.message, 3);
        assert!(e.position > 0 && e.position <= cut as u64, "{e}");
        let text = e.to_string();
        assert!(text.contains("report 50001"), "{text}");
        assert!(text.contains("truncated"), "{text}");
        assert!(text.contains("after order 402-2222222-2222222"), "{text}");

        // Cut in the middle of a tag, and right before the envelope closes.
        let cut = DOC.find("<ItemStat").unwrap() + 5;
        let (_, error) = read_all(&DOC.as_bytes()[..cut], 4096).await;
        assert!(error.is_some());
        let end = DOC.rfind("</AmazonEnvelope>").unwrap();
        let (orders, error) = read_all(&DOC.as_bytes()[..end], 4096).await;
        assert_eq!(orders.len(), 6);
        assert!(error.unwrap().to_string().contains("truncated"));
    }

    #[tokio::test]
    async fn what_is_not_a_report_is_an_error() {
        let cases: [(&str, &str); 5] = [
            ("", "empty"),
            (
                "<html><body>502 Bad Gateway</body></html>",
                "root element <html>",
            ),
            (
                "<AmazonEnvelope><Message><Order><AmazonOrderID>1</AmazonOrderID></Ordr></Message></AmazonEnvelope>",
                "not well-formed",
            ),
            (
                "<AmazonEnvelope><Message><Order><X>&nbsp;</X></Order></Message></AmazonEnvelope>",
                "unknown entity &nbsp;",
            ),
            (
                "<AmazonEnvelope></AmazonEnvelope><AmazonEnvelope>",
                "follows </AmazonEnvelope>",
            ),
        ];
        for (doc, expected) in cases {
            let (_, error) = read_all(doc.as_bytes(), 4096).await;
            let text = error.map(|e| e.to_string()).unwrap_or_default();
            assert!(text.contains(expected), "{doc:?}: {text}");
        }
        // An envelope with no message is a report with no order.
        let (orders, error) = read_all(b"<AmazonEnvelope><Header/></AmazonEnvelope>", 64).await;
        assert!(orders.is_empty() && error.is_none());
    }

    #[tokio::test]
    async fn messages_without_an_order_are_counted_and_skipped() {
        let doc = "<AmazonEnvelope><Message><MessageID>1</MessageID></Message><Message><Order><AmazonOrderID>9</AmazonOrderID></Order></Message></AmazonEnvelope>";
        let reader = tokio::io::BufReader::new(doc.as_bytes());
        let mut orders = DocumentOrders::new(reader, "r");
        let first = orders.next_order().await.unwrap().unwrap();
        assert_eq!(first.message, 2);
        assert_eq!(orders.next_order().await.unwrap(), None);
        assert_eq!(orders.messages_without_order, 1);
    }
}
