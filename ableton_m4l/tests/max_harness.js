// Runs device/segue_device.js as Max's [js] would: in its own global scope,
// with Max's globals (outlet, post, messagename, arrayfromargs, Task, LiveAPI,
// require by module name) and Max's message dispatch (a selector naming a
// function calls it; anything else, e.g. an OSC address, goes to anything()).
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");

const DEVICE = path.join(__dirname, "..", "device");

class MaxJs {
    constructor(api, opts) {
        opts = opts || {};
        this.outlets = []; // [outlet index, ...atoms]
        this.posts = [];
        this.clock = { now: 1000000 };
        this.tasks = [];
        const self = this;
        const g = {
            post: (...a) => self.posts.push(a.join(" ")),
            outlet: (n, ...a) => self.outlets.push([n, ...a.flat()]),
            arrayfromargs: (args) => Array.prototype.slice.call(args),
            messagename: "",
            LiveAPI: function (p) { return api(p); },
            Task: function (fn, ctx) { this.fn = fn; this.interval = 0; this.repeat = () => {}; this.cancel = () => {}; self.tasks.push(this); },
            Date: function () { return { getTime: () => self.clock.now }; },
            require: (name) => require(path.join(DEVICE, name + ".js")),
            Math, JSON, String, Number, Array, Object, isFinite,
            patcher: { filepath: opts.patcherPath || "" },
        };
        if (opts.os) g.max = { os: opts.os };
        this.g = vm.createContext(g);
        vm.runInContext(fs.readFileSync(path.join(DEVICE, "segue_device.js"), "utf8"), this.g,
                        { filename: "segue_device.js" });
    }
    // Send a Max message (selector + atoms) into the [js] inlet.
    send(selector, ...atoms) {
        this.g.messagename = selector;
        const fn = this.g[selector];
        if (typeof fn === "function" && selector !== "anything") return fn.apply(this.g, atoms);
        return this.g.anything.apply(this.g, atoms);
    }
    tick(ms) { this.clock.now += ms; for (const t of this.tasks) t.fn(); }
    take(n) { const out = this.outlets.filter((o) => o[0] === n); this.outlets = this.outlets.filter((o) => o[0] !== n); return out.map((o) => o.slice(1)); }
    ui(what) { return this.outlets.filter((o) => o[0] === 2 && o[1] === what).map((o) => o[2]); }
}

module.exports = { MaxJs };
