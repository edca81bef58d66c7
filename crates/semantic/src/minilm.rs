//! `MiniLmEmbedder`: all-MiniLM-L6-v2 with candle (being written).
