pub mod orchestration;
