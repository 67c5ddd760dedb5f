// WAV helpers for the Node tests: write a float32 WAV, read any PCM/float WAV's
// header (rate, channels, frame count) by walking its RIFF chunks.
"use strict";
const fs = require("node:fs");

function writeFloatWav(path, sr, channels, frames, fn) {
    const dataBytes = frames * channels * 4;
    const b = Buffer.alloc(44 + dataBytes);
    b.write("RIFF", 0); b.writeUInt32LE(36 + dataBytes, 4); b.write("WAVE", 8);
    b.write("fmt ", 12); b.writeUInt32LE(16, 16); b.writeUInt16LE(3, 20); b.writeUInt16LE(channels, 22);
    b.writeUInt32LE(sr, 24); b.writeUInt32LE(sr * channels * 4, 28); b.writeUInt16LE(channels * 4, 32);
    b.writeUInt16LE(32, 34); b.write("data", 36); b.writeUInt32LE(dataBytes, 40);
    for (let i = 0; i < frames; i++)
        for (let c = 0; c < channels; c++) b.writeFloatLE(fn ? fn(i, c) : 0, 44 + (i * channels + c) * 4);
    fs.writeFileSync(path, b);
}

function readWavInfo(path) {
    const b = fs.readFileSync(path);
    if (b.toString("ascii", 0, 4) !== "RIFF" || b.toString("ascii", 8, 12) !== "WAVE") throw new Error(path + ": not a WAV file");
    let off = 12, fmt = null;
    while (off + 8 <= b.length) {
        const id = b.toString("ascii", off, off + 4), size = b.readUInt32LE(off + 4);
        if (id === "fmt ") {
            fmt = { format: b.readUInt16LE(off + 8), channels: b.readUInt16LE(off + 10), sr: b.readUInt32LE(off + 12),
                    blockAlign: b.readUInt16LE(off + 20), bits: b.readUInt16LE(off + 22) };
            if (fmt.format === 0xfffe) fmt.format = b.readUInt16LE(off + 32); // WAVE_FORMAT_EXTENSIBLE subformat
        } else if (id === "data") {
            if (!fmt) throw new Error(path + ": data before fmt");
            return Object.assign(fmt, { frames: size / fmt.blockAlign });
        }
        off += 8 + size + (size & 1);
    }
    throw new Error(path + ": no data chunk");
}

module.exports = { writeFloatWav, readWavInfo };
