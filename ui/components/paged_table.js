// The browser's side of a table whose rows are one page read on the server (`paged_table.py`): Quasar's q-table with
// our own column headings and page controls. Every other slot (the row template) comes from the server, and every
// event the row template emits (`$parent.$emit(...)`) reaches the server's listeners: nothing is declared in `emits`,
// so q-table, the row template's `$parent`, receives them all.

// A row's menu (`<q-list class="cxt-row-menu">`): Up and Down move between its items, wrapping round, as menus do
// everywhere; Tab and Escape as usual. Quasar puts an open menu at the end of the body, so one listener serves all.
if (!window.cxtRowMenuKeys) {
  window.cxtRowMenuKeys = true;
  document.addEventListener("keydown", (event) => {
    const step = { ArrowDown: 1, ArrowUp: -1 }[event.key];
    const menu = step && event.target.closest && event.target.closest(".cxt-row-menu");
    if (!menu) return;
    const items = [...menu.querySelectorAll("[role=menuitem]")];
    const at = items.indexOf(document.activeElement.closest("[role=menuitem]"));
    event.preventDefault();
    items[(at + step + items.length) % items.length]?.focus();
  });
}

export default {
  // Column headings: each sortable one is a button (a Tab stop; Enter and Space sort), its `th` says how the table is
  // sorted (`aria-sort`), and the sorted column always shows its arrow. `col.sorted` is set by the server with the
  // rows. The page controls say which rows of how many are shown.
  template: `
    <q-table ref="qRef" :columns="columns">
      <template v-slot:header="props">
        <tr class="q-tr">
          <th v-for="col in props.cols" :key="col.name" scope="col" class="text-left"
            :aria-sort="col.sortable ? (col.sorted || 'none') : undefined">
            <button v-if="col.sortable" type="button" class="cxt-sort" :data-sort="col.name"
              @click="sortBy(col, props)">{{ col.label }}
              <q-icon aria-hidden="true" :name="col.sorted === 'descending' ? 'arrow_downward' : 'arrow_upward'"
                :class="['cxt-sort-arrow', col.sorted ? 'cxt-sorted' : '']" /></button>
            <span v-else>{{ col.label }}</span>
          </th>
        </tr>
      </template>
      <template v-slot:pagination="props">
        <span class="text-body2 q-mr-sm">{{ shownRange(props.pagination) }}</span>
        <q-btn flat dense round icon="chevron_left" aria-label="Previous page" :disable="props.isFirstPage"
          @click="props.prevPage" />
        <q-btn flat dense round icon="chevron_right" aria-label="Next page" :disable="props.isLastPage"
          @click="props.nextPage" />
      </template>
      <template v-for="(_, slot) in $slots" v-slot:[slot]="slotProps">
        <slot :name="slot" v-bind="slotProps || {}" />
      </template>
    </q-table>
  `,
  props: {
    columns: Array,
  },
  created() {
    this.sortFocus = null; // not reactive: setting it must not redraw anything
  },
  updated() {
    // The server's answer to a sort redraws the headings: the heading that was pressed keeps the keyboard focus.
    const name = this.sortFocus;
    if (!name) return;
    this.sortFocus = null;
    requestAnimationFrame(() => this.$el.querySelector(`[data-sort="${name}"]`)?.focus());
  },
  methods: {
    sortBy(col, props) {
      this.sortFocus = col.name;
      props.sort(col);
    },
    shownRange(pagination) {
      const { page, rowsPerPage, rowsNumber } = pagination;
      const first = rowsNumber === 0 ? 0 : (page - 1) * rowsPerPage + 1;
      return `${first}\u2013${Math.min(page * rowsPerPage, rowsNumber)} of ${rowsNumber}`;
    },
  },
};
