//! The body of `FaultKind::HugeBody` / `HugeBodyChunked`: exactly the requested number of bytes of
//! syntactically valid JSON shaped like the operation's answer (`{"payload":{"Orders":[{...},...]}}`
//! for getOrders, say), produced chunk by chunk while it is being sent.
//!
//! It must never materialise the body: a client test may ask for gigabytes, and the simulator's
//! own memory has to stay at a couple of 64 KiB blocks whatever the size.

use std::convert::Infallible;

use axum::body::{Body, Bytes};

use crate::SimOp;

const CHUNK: usize = 64 * 1024;

/// The JSON skeleton: `prefix`, elements separated by commas, padding spaces, `suffix`.
struct Shape {
    prefix: &'static str,
    element: &'static str,
    suffix: &'static str,
}

fn shape(op: SimOp) -> Shape {
    match op {
        SimOp::GetOrdersV0 => Shape {
            prefix: r#"{"payload":{"Orders":["#,
            element: r#"{"AmazonOrderId":"000-0000000-0000000","OrderStatus":"Shipped"}"#,
            suffix: "]}}",
        },
        SimOp::GetOrderItemsV0 => Shape {
            prefix: r#"{"payload":{"AmazonOrderId":"000-0000000-0000000","OrderItems":["#,
            element: r#"{"OrderItemId":"00000000000000","QuantityOrdered":1}"#,
            suffix: "]}}",
        },
        SimOp::SearchOrders => Shape {
            prefix: r#"{"orders":["#,
            element: r#"{"orderId":"000-0000000-0000000","orderItems":[]}"#,
            suffix: "]}",
        },
        SimOp::GetOrder => Shape {
            prefix: r#"{"order":{"orderId":"000-0000000-0000000","orderItems":["#,
            element: r#"{"orderItemId":"00000000000000","quantityOrdered":1}"#,
            suffix: "]}}",
        },
        SimOp::CreateReport
        | SimOp::GetReport
        | SimOp::GetReportDocument
        | SimOp::DownloadDocument => Shape {
            prefix: r#"{"errors":["#,
            element: r#"{"code":"InternalFailure","message":"padding"}"#,
            suffix: "]}",
        },
    }
}

/// Hands out the body's pieces in order; each piece is a slice of a shared block, not a copy.
struct Generator {
    head: Option<Bytes>,
    /// `,element` repetitions still to send, and a block holding many of them.
    repeats_left: u64,
    repeat_block: Bytes,
    repeat_len: usize,
    spaces_left: u64,
    space_block: Bytes,
    tail: Option<Bytes>,
}

impl Generator {
    fn new(op: SimOp, total: u64) -> Generator {
        let shape = shape(op);
        let (prefix, element, suffix) = (
            shape.prefix.as_bytes(),
            shape.element.as_bytes(),
            shape.suffix.as_bytes(),
        );
        let repeat_len = element.len() + 1;
        let repeat: Vec<u8> = [b",".as_slice(), element].concat();
        let mut generator = Generator {
            head: None,
            repeats_left: 0,
            repeat_block: Bytes::from(repeat.repeat((CHUNK / repeat_len).max(1))),
            repeat_len,
            spaces_left: 0,
            space_block: Bytes::from(vec![b' '; CHUNK]),
            tail: None,
        };
        let frame = (prefix.len() + suffix.len()) as u64;
        if total < frame {
            // Too small for valid JSON: the first `total` bytes of the skeleton.
            let skeleton = [prefix, suffix].concat();
            generator.head = Some(Bytes::from(skeleton[..total as usize].to_vec()));
            return generator;
        }
        let fill = total - frame;
        // k elements with k − 1 commas take k·(e + 1) − 1 bytes.
        let elements = (fill + 1) / repeat_len as u64;
        generator.tail = Some(Bytes::from_static(suffix));
        if elements == 0 {
            generator.head = Some(Bytes::from_static(prefix));
            generator.spaces_left = fill;
        } else {
            generator.head = Some(Bytes::from([prefix, element].concat()));
            generator.repeats_left = elements - 1;
            generator.spaces_left = fill - (elements * repeat_len as u64 - 1);
        }
        generator
    }

    fn next_piece(&mut self) -> Option<Bytes> {
        if let Some(head) = self.head.take() {
            return Some(head);
        }
        if self.repeats_left > 0 {
            let per_block = (self.repeat_block.len() / self.repeat_len) as u64;
            let count = self.repeats_left.min(per_block);
            self.repeats_left -= count;
            return Some(self.repeat_block.slice(..count as usize * self.repeat_len));
        }
        if self.spaces_left > 0 {
            let count = self.spaces_left.min(CHUNK as u64);
            self.spaces_left -= count;
            return Some(self.space_block.slice(..count as usize));
        }
        self.tail.take()
    }
}

/// A streamed body of exactly `total` bytes shaped like `op`'s answer.
pub fn body(op: SimOp, total: u64) -> Body {
    let stream = futures_util::stream::unfold(Generator::new(op, total), |mut generator| async {
        generator
            .next_piece()
            .map(|piece| (Ok::<_, Infallible>(piece), generator))
    });
    Body::from_stream(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(op: SimOp, total: u64) -> Vec<u8> {
        let mut generator = Generator::new(op, total);
        let mut out = Vec::new();
        while let Some(piece) = generator.next_piece() {
            out.extend_from_slice(&piece);
        }
        out
    }

    #[test]
    fn exact_length_and_valid_json_whenever_it_fits() {
        for op in [
            SimOp::GetOrdersV0,
            SimOp::GetOrderItemsV0,
            SimOp::SearchOrders,
            SimOp::GetOrder,
            SimOp::DownloadDocument,
        ] {
            for total in [0, 5, 25, 26, 90, 91, 92, 1000, 200_000, 1_000_003] {
                let bytes = collect(op, total);
                assert_eq!(bytes.len() as u64, total, "{op:?} {total}");
                let frame = shape(op).prefix.len() + shape(op).suffix.len();
                if total as usize >= frame {
                    serde_json::from_slice::<serde_json::Value>(&bytes)
                        .unwrap_or_else(|e| panic!("{op:?} {total}: {e}"));
                }
            }
        }
    }
}
