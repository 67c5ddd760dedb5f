// Minimal OSC 1.0 codec for the Node side (tests and tools): 's', 'i', 'f',
// 'd', 'h' arguments, messages and bundles. The Max device never loads this:
// there, [udpsend]/[udpreceive] do the encoding.
"use strict";

function pad4(n) { return (n + 3) & ~3; }

function encodeString(s) {
    const raw = Buffer.from(String(s), "utf8");
    const out = Buffer.alloc(pad4(raw.length + 1));
    raw.copy(out);
    return out;
}

// args: [{t: 's'|'i'|'f'|'d'|'h', v}]
function encodeMessage(address, args) {
    const parts = [encodeString(address), encodeString("," + args.map((a) => a.t).join(""))];
    for (const a of args) {
        let b;
        switch (a.t) {
        case "s": b = encodeString(a.v); break;
        case "i": b = Buffer.alloc(4); b.writeInt32BE(a.v); break;
        case "f": b = Buffer.alloc(4); b.writeFloatBE(a.v); break;
        case "d": b = Buffer.alloc(8); b.writeDoubleBE(a.v); break;
        case "h": b = Buffer.alloc(8); b.writeBigInt64BE(BigInt(a.v)); break;
        default: throw new Error("unsupported OSC type " + a.t);
        }
        parts.push(b);
    }
    return Buffer.concat(parts);
}

function readString(buf, off) {
    const end = buf.indexOf(0, off);
    if (end < 0) throw new Error("unterminated OSC string");
    return [buf.toString("utf8", off, end), pad4(end + 1)];
}

function decodeMessage(buf) {
    let [address, off] = readString(buf, 0);
    if (off >= buf.length) return { address, args: [] };
    let tags;
    [tags, off] = readString(buf, off);
    if (tags[0] !== ",") throw new Error("OSC type tags missing");
    const args = [];
    for (const t of tags.slice(1)) {
        switch (t) {
        case "s": case "S": { let v; [v, off] = readString(buf, off); args.push({ t, v }); break; }
        case "i": args.push({ t, v: buf.readInt32BE(off) }); off += 4; break;
        case "f": args.push({ t, v: buf.readFloatBE(off) }); off += 4; break;
        case "d": args.push({ t, v: buf.readDoubleBE(off) }); off += 8; break;
        case "h": args.push({ t, v: Number(buf.readBigInt64BE(off)) }); off += 8; break;
        case "T": args.push({ t, v: true }); break;
        case "F": args.push({ t, v: false }); break;
        case "N": args.push({ t, v: null }); break;
        default: throw new Error("unsupported OSC type tag " + t);
        }
    }
    return { address, args };
}

// Returns a list of messages (bundles flattened).
function decodePacket(buf) {
    if (buf.length >= 8 && buf.toString("utf8", 0, 8) === "#bundle\0") {
        const out = [];
        let off = 16;
        while (off + 4 <= buf.length) {
            const n = buf.readInt32BE(off);
            out.push(...decodePacket(buf.subarray(off + 4, off + 4 + n)));
            off += 4 + n;
        }
        return out;
    }
    return [decodeMessage(buf)];
}

module.exports = { encodeMessage, decodeMessage, decodePacket };
