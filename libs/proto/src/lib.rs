//! The generated gRPC code of `proto/crm/v1` and every conversion between its messages
//! and the domain types, so that business logic never touches prost structs.

pub mod convert;
pub mod json;
pub mod status;

/// Generated from `proto/crm/v1/*.proto`.
#[allow(clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("crm.v1");
}

/// Encoded descriptors of every CRM service, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("crm_descriptor");
