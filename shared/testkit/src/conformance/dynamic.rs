//! Calling any Fusion method by its full name with JSON (the proto3 JSON mapping), by
//! way of `prost-reflect` dynamic messages and a small codec for them.

use std::sync::OnceLock;

use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, MethodDescriptor,
    ReflectMessage as _, SerializeOptions,
};
use serde_json::Value;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// Every Fusion proto (and the googleapis and well-known types they use), from
/// [`fusion_proto::FILE_DESCRIPTOR_SET`].
pub fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(fusion_proto::FILE_DESCRIPTOR_SET)
            .expect("fusion_proto::FILE_DESCRIPTOR_SET decodes")
    })
}

/// `google.api.FieldBehavior.OUTPUT_ONLY`.
pub const OUTPUT_ONLY: i32 = 3;
/// `google.api.FieldBehavior.IMMUTABLE`.
pub const IMMUTABLE: i32 = 5;

/// The field's `(google.api.field_behavior)` values (empty when it has none).
pub fn field_behaviors(field: &prost_reflect::FieldDescriptor) -> Vec<i32> {
    let extension = pool()
        .get_extension_by_name("google.api.field_behavior")
        .expect("google.api.field_behavior is in the pool");
    let options = field.options();
    if !options.has_extension(&extension) {
        return Vec::new();
    }
    match options.get_extension(&extension).as_ref() {
        prost_reflect::Value::List(values) => values
            .iter()
            .filter_map(prost_reflect::Value::as_enum_number)
            .collect(),
        other => other.as_enum_number().into_iter().collect(),
    }
}

/// A caller: a user of a tenant and its access token, sent as the edge would.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The caller's tenant (the `x-tenant-id` header).
    pub tenant_id: i64,
    /// The access token (`authorization: Bearer <token>`).
    pub token: String,
}

impl Caller {
    /// A caller of `tenant_id` with `token`.
    pub fn new(tenant_id: i64, token: impl Into<String>) -> Self {
        Self {
            tenant_id,
            token: token.into(),
        }
    }

    /// `message` with the caller's token and tenant header.
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut req = Request::new(message);
        req.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.token)
                .parse()
                .expect("a token is ASCII"),
        );
        req.metadata_mut().insert(
            "x-tenant-id",
            self.tenant_id.to_string().parse().expect("a number"),
        );
        req
    }
}

/// A gRPC client for any method in [`pool`], speaking JSON.
#[derive(Clone, Debug)]
pub struct DynamicClient {
    channel: Channel,
}

impl DynamicClient {
    /// A client over `channel`.
    pub fn new(channel: Channel) -> Self {
        Self { channel }
    }

    /// The method `service`/`method`, e.g. (`fusion.property.v1.DeveloperService`,
    /// `CreateDeveloper`); panics when the pool has no such method.
    pub fn method(service: &str, method: &str) -> MethodDescriptor {
        let svc = pool()
            .get_service_by_name(service)
            .unwrap_or_else(|| panic!("no service {service} in the descriptor pool"));
        svc.methods()
            .find(|m| m.name() == method)
            .unwrap_or_else(|| panic!("{service} has no method {method}"))
    }

    /// Calls the unary `service`/`method` as `who` with a JSON request (field names as
    /// in the proto or in camelCase) and returns the JSON response (proto field names).
    /// Panics when `request` does not fit the method's input: that is a bug of the test.
    pub async fn call(
        &self,
        who: &Caller,
        service: &str,
        method: &str,
        request: Value,
    ) -> Result<Value, Status> {
        let method = Self::method(service, method);
        let request = from_json(method.input(), request);
        self.call_message(who, &method, request)
            .await
            .map(|m| to_json(&m))
    }

    /// Calls a unary method with a dynamic message.
    pub async fn call_message(
        &self,
        who: &Caller,
        method: &MethodDescriptor,
        request: DynamicMessage,
    ) -> Result<DynamicMessage, Status> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(format!("channel not ready: {e}")))?;
        let codec = DynamicCodec {
            output: method.output(),
        };
        grpc.unary(who.request(request), path(method), codec)
            .await
            .map(tonic::Response::into_inner)
    }

    /// Calls a client-streaming method with `messages` (JSON, as for [`Self::call`]).
    pub async fn call_streaming(
        &self,
        who: &Caller,
        service: &str,
        method: &str,
        messages: Vec<Value>,
    ) -> Result<Value, Status> {
        let method = Self::method(service, method);
        let messages: Vec<DynamicMessage> = messages
            .into_iter()
            .map(|m| from_json(method.input(), m))
            .collect();
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(format!("channel not ready: {e}")))?;
        let codec = DynamicCodec {
            output: method.output(),
        };
        let stream = tokio_stream::iter(messages);
        grpc.client_streaming(who.request(stream), path(&method), codec)
            .await
            .map(|r| to_json(&r.into_inner()))
    }
}

fn path(method: &MethodDescriptor) -> PathAndQuery {
    let path = format!("/{}/{}", method.parent_service().full_name(), method.name());
    PathAndQuery::try_from(path).expect("a method path is a valid URI path")
}

/// A message of type `desc` from JSON; panics (a test bug) when the JSON does not fit.
pub fn from_json(desc: MessageDescriptor, json: Value) -> DynamicMessage {
    let name = desc.full_name().to_owned();
    DynamicMessage::deserialize_with_options(
        desc,
        json.clone(),
        &DeserializeOptions::new().deny_unknown_fields(true),
    )
    .unwrap_or_else(|e| panic!("{json} is not a valid {name}: {e}"))
}

/// The JSON of `message`, with proto field names (`lot_number`, not `lotNumber`) and
/// default values left out.
pub fn to_json(message: &DynamicMessage) -> Value {
    message
        .serialize_with_options(
            serde_json::value::Serializer,
            &SerializeOptions::new().use_proto_field_name(true),
        )
        .expect("a dynamic message serialises to JSON")
}

/// Encodes and decodes [`DynamicMessage`]s of one method.
struct DynamicCodec {
    output: MessageDescriptor,
}

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder(self.output.clone())
    }
}

struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encoding {}: {e}", item.descriptor().name())))
    }
}

struct DynamicDecoder(MessageDescriptor);

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        DynamicMessage::decode(self.0.clone(), src)
            .map(Some)
            .map_err(|e| Status::internal(format!("decoding {}: {e}", self.0.full_name())))
    }
}

/// The JSON (as [`to_json`]) of a generated message of type `full_name`, e.g. what a
/// typed client returned (`fusion.property.v1.Media`).
pub fn json_of(full_name: &str, message: &impl prost::Message) -> Value {
    let desc = pool()
        .get_message_by_name(full_name)
        .unwrap_or_else(|| panic!("no message {full_name} in the descriptor pool"));
    let message = DynamicMessage::decode(desc, message.encode_to_vec().as_slice())
        .unwrap_or_else(|e| panic!("the bytes are no {full_name}: {e}"));
    to_json(&message)
}
