//! Stampede protection settings (being written).
