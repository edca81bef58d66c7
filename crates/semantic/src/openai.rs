//! `OpenAiEmbedder`: the OpenAI-compatible embeddings API (being written).
